/**
 * Status reporting to livekit-server: IOInfo.CreateEgress
 * once (io_create_timeout), then IOInfo.UpdateEgress for every change (io_update_timeout), through
 * `io_workers` workers chosen by a hash of the egress id. Per egress, updates go out one at a time and
 * in order; a newer snapshot replaces one not yet sent (latest-snapshot coalescing). Timeouts and "no
 * response" are retried with backoff 250 ms doubling to 2 s (the original doubles to 1 min); while
 * that happens the client is unhealthy (affinity −1) and after 10 min of continuous unhealthiness the
 * watchdog fires.
 */
import { createHash } from 'node:crypto';
import type { EgressInfo } from '@livekit/protocol';
import { PsrpcError, type PsrpcClient } from '../rpc/psrpc/index.js';
import { IOInfo } from '../rpc/services.js';
import { logger } from '../log.js';

const log = logger('io');

export const IO_BACKOFF_START_MS = 250;
/**
 * Retry cap. A retried update is one small message; with livekit-server down (restarted, crashed) a
 * 1 min cap would hold a final status back for up to a minute after the server is back, where 2 s
 * gets it there within seconds.
 */
export const IO_BACKOFF_MAX_MS = 2_000;
export const IO_WATCHDOG_MS = 10 * 60_000;
export const IO_QUEUE_SIZE = 500;

export interface IoReporterOptions {
  readonly createTimeoutMs: number;
  readonly updateTimeoutMs: number;
  readonly workers: number;
  /** Called once when IO has been unhealthy for IO_WATCHDOG_MS. */
  readonly onWatchdog?: () => void;
  readonly backoffStartMs?: number;
  readonly watchdogMs?: number;
}

interface WorkerQueue {
  /** Egress ids waiting, in arrival order (each at most once). */
  readonly order: string[];
  running: boolean;
}

function retryable(err: unknown): boolean {
  return err instanceof PsrpcError ? err.code === 'deadline_exceeded' || err.code === 'unavailable' : true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class IoReporter {
  private readonly queues: WorkerQueue[];
  /** Latest unsent snapshot per egress. */
  private readonly pending = new Map<string, EgressInfo>();
  /** Egresses whose CreateEgress is still running: their updates wait for it. */
  private readonly creating = new Map<string, Promise<void>>();
  private unhealthySince: number | null = null;
  private watchdogFired = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  readonly stats = { created: 0, updated: 0, retries: 0, failed: 0, coalesced: 0, dropped: 0 };

  constructor(
    private readonly client: PsrpcClient,
    private readonly opts: IoReporterOptions,
  ) {
    this.queues = Array.from({ length: Math.max(1, opts.workers) }, () => ({ order: [], running: false }));
  }

  get healthy(): boolean {
    return this.unhealthySince === null;
  }

  /** IOInfo.CreateEgress (one attempt, io_create_timeout). Updates of this egress wait for it. */
  create(info: EgressInfo): Promise<void> {
    const p = this.client.call(IOInfo.CreateEgress, undefined, info.clone(), { timeoutMs: this.opts.createTimeoutMs }).then(() => {
      this.stats.created++;
    });
    const gate = p.catch(() => undefined);
    this.creating.set(info.egressId, gate);
    void gate.then(() => {
      if (this.creating.get(info.egressId) === gate) this.creating.delete(info.egressId);
    });
    return p;
  }

  /** Queues an UpdateEgress with this snapshot (coalesced with an unsent older one). */
  update(info: EgressInfo): void {
    if (this.closed) return;
    const id = info.egressId;
    const q = this.queueOf(id);
    if (this.pending.has(id)) {
      this.stats.coalesced++;
    } else {
      if (q.order.length >= IO_QUEUE_SIZE) {
        this.stats.dropped++;
        log.error(`io: update queue full, dropping update [egress:${id}]`);
        return;
      }
      q.order.push(id);
    }
    this.pending.set(id, info.clone());
    if (!q.running) void this.run(q);
  }

  private queueOf(id: string): WorkerQueue {
    const h = createHash('sha1').update(id).digest().readUInt32BE(0);
    return this.queues[h % this.queues.length] as WorkerQueue;
  }

  private async run(q: WorkerQueue): Promise<void> {
    q.running = true;
    try {
      while (q.order.length > 0) {
        const id = q.order[0] as string;
        await this.creating.get(id);
        await this.send(id);
        q.order.shift();
      }
    } finally {
      q.running = false;
      if (this.queues.every((x) => !x.running && x.order.length === 0)) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    }
  }

  /** Sends the latest snapshot of `id` until it is delivered (retrying) or fails for good. */
  private async send(id: string): Promise<void> {
    let backoff = this.opts.backoffStartMs ?? IO_BACKOFF_START_MS;
    for (;;) {
      const info = this.pending.get(id);
      if (!info) return;
      this.pending.delete(id);
      try {
        await this.client.call(IOInfo.UpdateEgress, undefined, info, { timeoutMs: this.opts.updateTimeoutMs });
        this.stats.updated++;
        this.unhealthySince = null;
        // A newer snapshot may have arrived meanwhile: it is sent in this same turn (in order).
        if (!this.pending.has(id)) return;
        backoff = this.opts.backoffStartMs ?? IO_BACKOFF_START_MS;
        continue;
      } catch (err) {
        if (!retryable(err) || this.closed) {
          this.stats.failed++;
          log.error(`io: UpdateEgress failed: ${(err as Error).message} [egress:${id}]`);
          if (!this.pending.has(id)) return;
          continue;
        }
        this.stats.retries++;
        this.markUnhealthy();
        log.warn(`io: UpdateEgress failed, retrying in ${backoff} ms: ${(err as Error).message} [egress:${id}]`);
        // Retry with the newest snapshot available by then.
        if (!this.pending.has(id)) this.pending.set(id, info);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, IO_BACKOFF_MAX_MS);
      }
    }
  }

  private markUnhealthy(): void {
    const now = Date.now();
    this.unhealthySince ??= now;
    if (!this.watchdogFired && now - this.unhealthySince >= (this.opts.watchdogMs ?? IO_WATCHDOG_MS)) {
      this.watchdogFired = true;
      log.error('io: livekit-server unreachable for too long; shutting down');
      this.opts.onWatchdog?.();
    }
  }

  /** Resolves once every queued update was delivered (or given up), or after `timeoutMs`. */
  async drain(timeoutMs = 60_000): Promise<void> {
    if (this.queues.every((q) => !q.running && q.order.length === 0)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.closed = true;
  }
}
