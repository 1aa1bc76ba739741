/**
 * /proc readers for CPU and memory accounting of egress process trees (Linux only; elsewhere every
 * reader returns empty results and admission falls back to the reservations).
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ on Linux (sysconf(_SC_CLK_TCK)) is 100 on every mainstream kernel config. */
export const CLK_TCK = 100;
export const PAGE_SIZE = 4096;

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  /** utime + stime in clock ticks. */
  readonly cpuTicks: number;
  /** Start time after boot in clock ticks (identifies the process across pid reuse). */
  readonly startTime: number;
  readonly rssBytes: number;
  /** Exited, not yet reaped by its parent. */
  readonly zombie?: boolean;
}

/** Parses /proc/<pid>/stat; null if gone or unreadable. */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: fields start after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] = state (field 3); field n is f[n - 3]
  const num = (n: number): number => Number(f[n - 3] ?? 0);
  return {
    pid,
    ppid: num(4),
    pgrp: num(5),
    cpuTicks: num(14) + num(15),
    startTime: num(22),
    rssBytes: num(24) * PAGE_SIZE,
    zombie: f[0] === 'Z',
  };
}

/** Every process (pid → stat). */
export function listProcs(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const s = readProcStat(Number(n));
    if (s) out.set(s.pid, s);
  }
  return out;
}

/** `root` and all its descendants found in `procs`. */
export function processTree(root: number, procs: Map<number, ProcStat>): ProcStat[] {
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const out: ProcStat[] = [];
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const s = procs.get(pid);
    if (!s) continue;
    out.push(s);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** Host CPU counters from /proc/stat (ticks). */
export function readHostCpu(): { idle: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle, total };
  } catch {
    return null;
  }
}

/** cgroup v2 memory.current in bytes, or null when unavailable. */
export function readCgroupMemory(): number | null {
  try {
    const v = Number(readFileSync('/sys/fs/cgroup/memory.current', 'latin1').trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** The process's command name (`gst-launch-1.0`, `chromium` …), '' once it is gone. */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Whether a remembered process still runs (same pid and start time, not a zombie waiting to be reaped). */
export function stillRunning(p: ProcStat): boolean {
  const now = readProcStat(p.pid);
  return !!now && now.startTime === p.startTime && !now.zombie;
}

/** SIGKILLs the remembered processes still running (process groups they lead included), except those `spare` keeps. */
export function killRemembered(procs: readonly ProcStat[], spare: (p: ProcStat) => boolean = () => false): void {
  for (const p of procs) {
    const now = readProcStat(p.pid);
    if (!now || now.startTime !== p.startTime || spare(p)) continue;
    try {
      if (now.pgrp === p.pid) process.kill(-p.pid, 'SIGKILL');
      else process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
