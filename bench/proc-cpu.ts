import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU accounting from /proc: follows process groups (Chromium's helpers, gst-launch's threads) and
 * keeps the highest cumulative utime+stime seen per pid, so processes that exit before the end still
 * count. Sample often enough (e.g. every 500 ms) that short-lived helpers are seen.
 */

const TICKS = 100; // USER_HZ on Linux

function statOf(pid: number): { pgid: number; ppid: number; cpuS: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state(0) ppid(1) pgrp(2) ... utime(11) stime(12). Children's times
    // (cutime/cstime) are left out: the children are sampled themselves.
    const ppid = Number(rest[1]);
    const pgid = Number(rest[2]);
    const cpu = Number(rest[11]) + Number(rest[12]);
    return { pgid, ppid, cpuS: cpu / TICKS };
  } catch {
    return null;
  }
}

export class GroupCpuMeter {
  readonly #maxCpu = new Map<number, number>();
  readonly #groups = new Set<number>();
  readonly #groupOf = new Map<number, number>();

  /** Starts following the process group led by `pid` (and the pid itself). */
  follow(pid: number): void {
    this.#groups.add(pid);
  }

  sample(): void {
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid)) continue;
      const st = statOf(pid);
      if (!st || (!this.#groups.has(st.pgid) && !this.#groups.has(pid))) continue;
      this.#maxCpu.set(pid, Math.max(this.#maxCpu.get(pid) ?? 0, st.cpuS));
      this.#groupOf.set(pid, st.pgid);
    }
  }

  /** CPU seconds used by every followed process (all of them start within the measured run). */
  total(): number {
    return this.byGroup().reduce((a, g) => a + g.cpuS, 0);
  }

  /** CPU seconds per followed process group. */
  byGroup(): { pgid: number; cpuS: number }[] {
    const sums = new Map<number, number>();
    for (const [pid, cpu] of this.#maxCpu) {
      const g = this.#groupOf.get(pid) ?? pid;
      sums.set(g, (sums.get(g) ?? 0) + cpu);
    }
    return [...sums].map(([pgid, cpuS]) => ({ pgid, cpuS }));
  }
}
