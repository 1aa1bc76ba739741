/**
 * Admission control and overload handling: per-request CPU/memory costs, the 15 s
 * reservation, `max_cpu_utilization`, memory limit with 1 GB headroom, Chrome "pulse client"
 * budget, and the CPU/memory kill rules sampled once a second.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { ServiceConfig } from '../config/index.js';
import type { RequestCost } from '../request/index.js';
import { listProcs, processTree, readCgroupMemory, readHostCpu, type ProcStat } from './proc.js';

export const RESERVATION_MS = 15_000;
export const MEMORY_HEADROOM_GB = 1;
export const PULSE_CLIENTS_PER_CHROME = 4;
export const CPU_KILL_SAMPLES = 10;
const GB = 1024 ** 3;

interface Entry {
  readonly id: string;
  readonly cost: RequestCost;
  readonly chrome: boolean;
  readonly acceptedAt: number;
  rootPid: number | null;
  /** Cores used over the last sample interval. */
  cpu: number;
  rssBytes: number;
  lastTicks: number | null;
  tree: ProcStat[];
  draining: boolean;
  drainAt: number;
}

export interface MonitorEvents {
  /** Graceful stop for CPU overload (End reason: CPU exhausted). */
  'cpu-drain': [string];
  /** Kill after cpu_kill_grace_sec (FAILED `CPU exhausted: x cores used`, 403). */
  'cpu-kill': [string, number];
  /** Kill for memory over max_memory (FAILED `OOM: x GB used`, 403). */
  'oom-kill': [string, number];
}

export interface MonitorOptions {
  /** Override the core count (tests). */
  readonly cores?: number;
  readonly now?: () => number;
  /** Host CPU counters (tests); default /proc/stat. */
  readonly hostCpu?: () => { idle: number; total: number } | null;
}

export class Monitor extends EventEmitter<MonitorEvents> {
  readonly cores: number;
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly hostCpu: () => { idle: number; total: number } | null;
  private lastHost: { idle: number; total: number } | null = null;
  private lastSampleAt = 0;
  /** Host CPU load, 0..1 over the last sample. */
  hostLoad = 0;
  private overSamples = 0;
  private memOverSince: number | null = null;
  cgroupMemory: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: ServiceConfig,
    opts: MonitorOptions = {},
  ) {
    super();
    this.cores = opts.cores ?? os.availableParallelism();
    this.now = opts.now ?? Date.now;
    this.hostCpu = opts.hostCpu ?? readHostCpu;
  }

  start(intervalMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get activeCount(): number {
    return this.entries.size;
  }

  private reserved(e: Entry, now: number): boolean {
    return now - e.acceptedAt < RESERVATION_MS;
  }

  /** Cores in use by egresses: Σ max(reservation while held, measured). */
  usedCpu(now = this.now()): number {
    let used = 0;
    for (const e of this.entries.values()) used += Math.max(this.reserved(e, now) ? e.cost.cpu : 0, e.cpu);
    return used;
  }

  /** Available cores as the original reports them (health `CpuLoad`). */
  availableCpu(now = this.now()): number {
    if (this.entries.size === 0) return this.cores;
    return this.cores * this.config.cpu_cost.max_cpu_utilization - this.usedCpu(now);
  }

  /** Memory (GB) used by egress processes plus held reservations. */
  usedMemoryGb(now = this.now()): { used: number; pending: number } {
    let used = 0;
    let pending = 0;
    for (const e of this.entries.values()) {
      used += e.rssBytes / GB;
      if (this.reserved(e, now)) pending += e.cost.memoryGb;
    }
    if (this.config.cpu_cost.memory_source === 'cgroup' && this.cgroupMemory !== null) used = this.cgroupMemory / GB;
    return { used, pending };
  }

  pulseClients(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.chrome) n += PULSE_CLIENTS_PER_CHROME;
    return n;
  }

  /** Why a request with this cost cannot be accepted now, or null if it can. */
  rejectReason(cost: RequestCost, chrome: boolean): 'memory' | 'pulse' | 'cpu' | null {
    const c = this.config.cpu_cost;
    const now = this.now();
    if (c.max_memory > 0) {
      const { used, pending } = this.usedMemoryGb(now);
      if (used + pending + cost.memoryGb + MEMORY_HEADROOM_GB >= c.max_memory) return 'memory';
    }
    if (chrome && this.pulseClients() + PULSE_CLIENTS_PER_CHROME > c.max_pulse_clients) return 'pulse';
    if (this.availableCpu(now) < cost.cpu) return 'cpu';
    return null;
  }

  canAccept(cost: RequestCost, chrome: boolean): boolean {
    return this.rejectReason(cost, chrome) === null;
  }

  /** Holds the reservation for an accepted request (15 s, then measured usage takes over). */
  accept(id: string, cost: RequestCost, chrome: boolean): void {
    this.entries.set(id, { id, cost, chrome, acceptedAt: this.now(), rootPid: null, cpu: 0, rssBytes: 0, lastTicks: null, tree: [], draining: false, drainAt: 0 });
  }

  setPid(id: string, pid: number): void {
    const e = this.entries.get(id);
    if (e) e.rootPid = pid;
  }

  /** The last seen process tree of an egress (to clean up after its handler died). */
  treeOf(id: string): readonly ProcStat[] {
    return this.entries.get(id)?.tree ?? [];
  }

  cpuOf(id: string): number {
    return this.entries.get(id)?.cpu ?? 0;
  }

  release(id: string): void {
    this.entries.delete(id);
  }

  /** One sampling round (normally every second). */
  sample(): void {
    const now = this.now();
    const host = this.hostCpu();
    if (host && this.lastHost && host.total > this.lastHost.total) {
      this.hostLoad = 1 - (host.idle - this.lastHost.idle) / (host.total - this.lastHost.total);
    }
    if (host) this.lastHost = host;
    const dtS = this.lastSampleAt > 0 ? (now - this.lastSampleAt) / 1000 : 0;
    this.lastSampleAt = now;
    this.cgroupMemory = readCgroupMemory();
    if (this.entries.size > 0) {
      const procs = listProcs();
      for (const e of this.entries.values()) {
        if (e.rootPid === null) continue;
        const tree = processTree(e.rootPid, procs);
        // Keep remembering descendants that were seen before (a dead handler's children are reparented).
        if (tree.length > 0) e.tree = mergeTrees(e.tree, tree, procs);
        const ticks = tree.reduce((a, p) => a + p.cpuTicks, 0);
        e.rssBytes = tree.reduce((a, p) => a + p.rssBytes, 0);
        if (e.lastTicks !== null && dtS > 0) e.cpu = Math.max(0, (ticks - e.lastTicks) / 100 / dtS);
        e.lastTicks = ticks;
      }
    }
    this.checkOverload(now);
  }

  private checkOverload(now: number): void {
    const c = this.config.cpu_cost;
    const threshold = c.max_cpu_utilization >= 0.95 ? (1 + c.max_cpu_utilization) / 2 : 0.95;
    if (this.hostLoad > threshold) this.overSamples++;
    else this.overSamples = 0;
    if (this.overSamples >= CPU_KILL_SAMPLES && this.entries.size > 1 && ![...this.entries.values()].some((e) => e.draining)) {
      let worst: Entry | null = null;
      for (const e of this.entries.values()) if (!worst || e.cpu - e.cost.cpu > worst.cpu - worst.cost.cpu) worst = e;
      if (worst) {
        worst.draining = true;
        worst.drainAt = now;
        this.overSamples = 0;
        this.emit('cpu-drain', worst.id);
      }
    }
    for (const e of this.entries.values()) {
      if (e.draining && e.drainAt > 0 && now - e.drainAt >= c.cpu_kill_grace_sec * 1000) {
        e.drainAt = 0;
        this.emit('cpu-kill', e.id, e.cpu);
      }
    }
    if (c.max_memory > 0) {
      const { used } = this.usedMemoryGb(now);
      if (used > c.max_memory) {
        this.memOverSince ??= now;
        if (now - this.memOverSince >= c.memory_kill_grace_sec * 1000 && this.entries.size > 0) {
          let biggest: Entry | null = null;
          for (const e of this.entries.values()) if (!biggest || e.rssBytes > biggest.rssBytes) biggest = e;
          if (biggest) this.emit('oom-kill', biggest.id, biggest.rssBytes / GB);
          this.memOverSince = null;
        }
      } else this.memOverSince = null;
    }
  }
}

function mergeTrees(prev: ProcStat[], cur: ProcStat[], procs: Map<number, ProcStat>): ProcStat[] {
  const byPid = new Map<number, ProcStat>();
  for (const p of prev) {
    const live = procs.get(p.pid);
    if (live && live.startTime === p.startTime) byPid.set(p.pid, p);
  }
  for (const p of cur) byPid.set(p.pid, p);
  return [...byPid.values()];
}
