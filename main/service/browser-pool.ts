/**
 * The warm pool (`browser_pool_size`): handler processes forked ahead of any request, each with its
 * browser already launched and idle on about:blank, so a page egress skips the handler fork, the
 * browser launch and the page attach (≈ 0.6–1 s on two cores; bench/web-egress --latency --pool).
 *
 * Why whole handlers and not bare browsers: the worker forks one handler per egress and the browser
 * is that handler's child — its CPU and memory are counted through the handler's process tree, a
 * dead handler's leftovers are reaped through it, and an orphaned handler still finishes its file.
 * A pre-forked handler keeps all of that unchanged; handing a browser's DevTools pipe from the worker
 * to a handler would make the browser the worker's child and break each of those rules.
 *
 * Isolation is kept: a pooled handler (and its browser) serves exactly one egress and exits with it;
 * the pool forks a replacement at once. One whose browser dies while idle exits and is replaced
 * (with a growing pause when they keep failing). Idle handlers are not egresses: admission does not
 * count them; their memory is reported on /metrics. On shutdown every idle one is told to close its
 * browser, and killed (with its browser's process group) if it does not within a few seconds.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { ServiceConfig } from '../config/index.js';
import { logger } from '../log.js';
import { forkHandler } from './handler-process.js';
import { parseHandlerMessage } from './ipc.js';
import { listProcs, processTree, readProcStat } from './proc.js';

const log = logger('pool');

/** How long a pool handler may take to launch its browser before it is replaced. */
const WARM_TIMEOUT_MS = 30_000;
/** How long an idle handler gets to close its browser at shutdown before both are killed. */
const DISPOSE_GRACE_MS = 5000;
const RETRY_MIN_MS = 1000;
/**
 * How long after a handler is taken its replacement is forked. Forking a handler and launching its
 * browser takes most of a core for about a second: done at once, it ran beside the taken egress's own
 * start and slowed it (bench/worker-start, 2 cores: page load ~140 → ~190 ms, getDisplayMedia ~225 →
 * ~330 ms, received → first frame p50 855 → 556 ms with the wait). A page egress has its first frame
 * within about a second of the request.
 */
const REFILL_AFTER_TAKE_MS = 2000;
const RETRY_MAX_MS = 60_000;
const GB = 1024 ** 3;

/** browser_pool_size, or when unset: 1 on machines with ≥ 4 cores and ≥ 8 GB of memory, else 0 (off). */
export function browserPoolSizeOf(config: ServiceConfig, cores = os.availableParallelism(), totalMemBytes = os.totalmem()): number {
  if (config.browser_pool_size !== undefined) return config.browser_pool_size;
  return cores >= 4 && totalMemBytes >= 8 * GB ? 1 : 0;
}

interface Member {
  readonly child: ChildProcess;
  /** The pool's own listeners, removed when the handler is taken (its HandlerProcess listens from then on). */
  readonly listeners: { message: (raw: unknown) => void; exit: (code: number | null, signal: NodeJS.Signals | null) => void };
  state: 'launching' | 'ready';
  /** The idle browser (pid + start time, so a reused pid is never signalled). */
  browser: { pid: number; startTime: number } | null;
  timer: NodeJS.Timeout | null;
}

export interface BrowserPoolOptions {
  readonly size: number;
  /** The config YAML every handler gets (the same as `start` carries). */
  readonly configYaml: string;
  readonly entry?: string;
}

export class BrowserPool {
  readonly #members = new Set<Member>();
  #closed = false;
  #failures = 0;
  #refillTimer: NodeJS.Timeout | null = null;
  /** Replacements forked so far (a pooled handler used, died or failed). */
  forked = 0;

  constructor(private readonly opts: BrowserPoolOptions) {}

  get size(): number {
    return this.opts.size;
  }

  /** Forks handlers until the pool is full. */
  start(): void {
    this.#refill();
  }

  /** Handlers with their browser idle and ready now. */
  get ready(): number {
    let n = 0;
    for (const m of this.#members) if (m.state === 'ready') n++;
    return n;
  }

  /** Pids of the idle browsers (tests, metrics). */
  browserPids(): number[] {
    return [...this.#members].flatMap((m) => (m.browser ? [m.browser.pid] : []));
  }

  /** RSS of the pool's handlers and browsers (bytes). */
  idleRssBytes(): number {
    const procs = listProcs();
    let bytes = 0;
    for (const m of this.#members) {
      const roots = [m.child.pid, m.browser?.pid].filter((p): p is number => p !== undefined);
      const seen = new Set<number>();
      for (const root of roots) for (const p of processTree(root, procs)) if (!seen.has(p.pid)) (seen.add(p.pid), (bytes += p.rssBytes));
    }
    return bytes;
  }

  /**
   * A ready handler for one page egress (the caller sends it `start` at once), or null when none is
   * ready. The pool forgets it and forks its replacement.
   */
  take(): ChildProcess | null {
    for (const m of this.#members) {
      if (m.state !== 'ready' || m.child.exitCode !== null || m.child.signalCode !== null || !m.child.connected) continue;
      this.#forget(m);
      m.child.off('message', m.listeners.message);
      m.child.off('exit', m.listeners.exit);
      this.#refillLater(REFILL_AFTER_TAKE_MS);
      return m.child;
    }
    return null;
  }

  /** Stops refilling; every idle handler closes its browser and exits (killed with it after DISPOSE_GRACE_MS). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  #closing: Promise<void> | null = null;

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#refillTimer) clearTimeout(this.#refillTimer);
    await Promise.all([...this.#members].map((m) => this.#dispose(m)));
  }

  #forget(m: Member): void {
    this.#members.delete(m);
    if (m.timer) clearTimeout(m.timer);
  }

  #refill(): void {
    if (this.#closed || this.#refillTimer) return;
    while (this.#members.size < this.opts.size) this.#fork();
  }

  /** After a failure: fork again later, longer each time in a row (a browser that cannot start must not spin). */
  #retryLater(): void {
    if (this.#closed || this.#refillTimer) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.#failures - 1, 10));
    log.warn(`pool: replacing a failed handler in ${delay} ms`);
    this.#refillLater(delay);
  }

  /** Refills once `delay` ms have passed (no-op while a refill is already scheduled). */
  #refillLater(delay: number): void {
    if (this.#closed || this.#refillTimer) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = null;
      this.#refill();
    }, delay);
    this.#refillTimer.unref();
  }

  #fork(): void {
    const child = forkHandler(this.opts.entry, ['warm-pool']);
    this.forked++;
    const m: Member = { child, state: 'launching', browser: null, timer: null, listeners: { message: (raw) => onMessage(raw), exit: (code, signal) => onExit(code, signal) } };
    this.#members.add(m);
    m.timer = setTimeout(() => {
      log.warn(`pool: handler ${child.pid ?? '?'} did not launch its browser in ${WARM_TIMEOUT_MS} ms`);
      void this.#kill(m);
    }, WARM_TIMEOUT_MS);
    m.timer.unref();
    const onMessage = (raw: unknown): void => {
      const msg = parseHandlerMessage(raw);
      if (msg?.type !== 'warm' || m.state !== 'launching') return;
      // The pid comes from another process: only a child of that handler is taken as its browser.
      const stat = readProcStat(msg.browserPid);
      if (!stat || stat.ppid !== child.pid) {
        log.warn(`pool: handler ${child.pid ?? '?'} named pid ${msg.browserPid}, not its own child`);
        void this.#kill(m);
        return;
      }
      m.browser = { pid: msg.browserPid, startTime: stat.startTime };
      m.state = 'ready';
      if (m.timer) clearTimeout(m.timer);
      m.timer = null;
      this.#failures = 0;
      log.debug(`pool: handler ${child.pid ?? '?'} ready (browser ${msg.browserPid})`);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      const wasMember = this.#members.has(m);
      this.#forget(m);
      this.#reapBrowser(m);
      if (!wasMember || this.#closed) return;
      this.#failures++;
      log.warn(`pool: idle handler ${child.pid ?? '?'} exited (${signal ?? `code ${code}`}); replacing it`);
      this.#retryLater();
    };
    child.on('message', m.listeners.message);
    child.on('exit', m.listeners.exit);
    child.on('error', (err) => log.warn(`pool: handler error: ${err.message}`));
    child.send({ type: 'prewarm', config: this.opts.configYaml }, (err) => {
      if (err) log.warn(`pool: prewarm send failed: ${err.message}`);
    });
  }

  /** Kills a pooled browser's process group (a handler that died cannot close it any more). */
  #reapBrowser(m: Member): void {
    const b = m.browser;
    if (!b) return;
    const stat = readProcStat(b.pid);
    if (!stat || stat.startTime !== b.startTime) return;
    try {
      process.kill(-b.pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }

  async #kill(m: Member): Promise<void> {
    this.#reapBrowser(m);
    const pid = m.child.pid;
    if (pid === undefined || m.child.exitCode !== null || m.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => m.child.once('exit', () => r()));
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Gone.
    }
    await exited;
  }

  async #dispose(m: Member): Promise<void> {
    const child = m.child;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.#reapBrowser(m);
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      child.kill('SIGTERM');
    } catch {
      // Gone.
    }
    const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), DISPOSE_GRACE_MS))]);
    if (!inTime) await this.#kill(m);
    this.#reapBrowser(m);
  }
}
