import { readdirSync, readFileSync } from 'node:fs';
import { commOf } from '../main/service/proc.js';

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

/** A Chromium process's `--type` (and utility service) from its command line; other processes: their name. */
function roleOf(pid: number, name: string): string {
  let args: string[];
  try {
    // Chromium rewrites its helpers' titles into one space-separated string.
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
  } catch {
    return name;
  }
  if (!/chrom/i.test(args[0] ?? '') && !/chrom/i.test(name)) return name;
  const type = args.find((a) => a.startsWith('--type='))?.slice(7);
  if (!type) return 'chromium:browser';
  const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19).split('.').pop();
  return `chromium:${type}${sub ? `:${sub}` : ''}`;
}

export class GroupCpuMeter {
  readonly #maxCpu = new Map<number, number>();
  readonly #groups = new Set<number>();
  readonly #groupOf = new Map<number, number>();
  readonly #trees = new Set<number>();
  readonly #baseline = new Map<number, number>();

  /** Starts following the process group led by `pid` (and the pid itself). */
  follow(pid: number): void {
    this.#groups.add(pid);
  }

  /**
   * Follows `root` and every descendant (whatever their process groups), counting only CPU used
   * from now on: what a long-running process (a worker) used before is its baseline.
   */
  followTree(root: number): void {
    this.#trees.add(root);
    for (const [pid, st] of this.#scan()) if (this.#inTree(pid, st.ppid)) this.#baseline.set(pid, st.cpuS);
  }

  #parents = new Map<number, number>();

  #inTree(pid: number, ppid: number): boolean {
    let p = pid;
    let parent = ppid;
    for (let hops = 0; hops < 64; hops++) {
      if (this.#trees.has(p)) return true;
      if (parent <= 1) return false;
      p = parent;
      parent = this.#parents.get(p) ?? 0;
    }
    return false;
  }

  #scan(): Map<number, { pgid: number; ppid: number; cpuS: number }> {
    const all = new Map<number, { pgid: number; ppid: number; cpuS: number }>();
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid)) continue;
      const st = statOf(pid);
      if (st) all.set(pid, st);
    }
    this.#parents = new Map([...all].map(([pid, st]) => [pid, st.ppid]));
    return all;
  }

  sample(): void {
    for (const [pid, raw] of this.#scan()) {
      const inTree = this.#trees.size > 0 && this.#inTree(pid, raw.ppid);
      if (!inTree && !this.#groups.has(raw.pgid) && !this.#groups.has(pid)) continue;
      const st = { ...raw, cpuS: raw.cpuS - (this.#baseline.get(pid) ?? 0), pgid: inTree ? -1 : raw.pgid };
      this.#maxCpu.set(pid, Math.max(this.#maxCpu.get(pid) ?? 0, st.cpuS));
      this.#groupOf.set(pid, st.pgid);
      if (!this.#names.has(pid)) this.#names.set(pid, commOf(pid));
      if (!this.#roles.has(pid)) this.#roles.set(pid, roleOf(pid, this.#names.get(pid) ?? ''));
    }
  }

  readonly #roles = new Map<number, string>();

  /**
   * CPU seconds per role, largest first: Chromium's processes by their `--type` (browser, renderer,
   * gpu-process, utility:<service>), every other process by its name.
   */
  byRole(): { role: string; cpuS: number }[] {
    const sums = new Map<string, number>();
    for (const [pid, cpu] of this.#maxCpu) {
      const role = this.#roles.get(pid) || '?';
      sums.set(role, (sums.get(role) ?? 0) + cpu);
    }
    return [...sums].map(([role, cpuS]) => ({ role, cpuS })).sort((a, b) => b.cpuS - a.cpuS);
  }

  readonly #names = new Map<number, string>();

  /** CPU seconds per kind of process (chromium, gst-launch-1.0, node …), largest first. */
  byName(): { name: string; cpuS: number }[] {
    const sums = new Map<string, number>();
    for (const [pid, cpu] of this.#maxCpu) {
      const name = this.#names.get(pid) || '?';
      sums.set(name, (sums.get(name) ?? 0) + cpu);
    }
    return [...sums].map(([name, cpuS]) => ({ name, cpuS })).sort((a, b) => b.cpuS - a.cpuS);
  }

  /** CPU seconds used by every followed process (processes of a followed tree: since followTree). */
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
