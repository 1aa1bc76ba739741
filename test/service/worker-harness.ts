/**
 * Test harness for the egress worker: spawns the real `serve()` code path as its own process
 * (`node dist/test/service/serve-entry.js --config-body …`, or `dist/main/cli.js serve` when
 * EGRESS_SERVE_VIA_CLI=1), captures its log, and gives helpers to find its handler processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freeTcpPort, sleep } from '../harness/redis.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SERVE_ENTRY = join(HERE, 'serve-entry.js');
export const CLI_ENTRY = join(HERE, '../../main/cli.js');

export interface WorkerOptions {
  readonly redisPort: number;
  readonly tmpDir: string;
  readonly cwd: string;
  readonly name?: string;
  /** Merged into the YAML config (top level). */
  readonly extra?: Record<string, unknown>;
  readonly cpuCost?: Record<string, number>;
  /**
   * Runs the worker in its own mount namespace with a tmpfs of this many MiB on `tmpDir` (a disk that
   * fills up). Root: `unshare -m`; otherwise `unshare -Urm` (a user namespace may mount tmpfs). Where
   * neither is allowed the worker does not start and startWorker throws with unshare's error.
   */
  readonly tmpfsMb?: number;
  /** Extra environment of the worker process (serve-entry's test hooks). */
  readonly env?: Record<string, string>;
}

export interface WorkerProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly healthPort: number;
  readonly promPort: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  health(): Promise<Record<string, unknown>>;
  metrics(): Promise<string>;
  /** Pids of this worker's handler processes, keyed by egress id. */
  handlers(): Map<string, number>;
  /** Sends a signal to the worker process only. */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL if still running; waits for exit. */
  kill(): Promise<void>;
}

export async function startWorker(opts: WorkerOptions): Promise<WorkerProc> {
  const [healthPort, promPort] = [await freeTcpPort(), await freeTcpPort()];
  const config = {
    redis: { address: `127.0.0.1:${opts.redisPort}` },
    api_key: 'devkey',
    api_secret: 'secret',
    health_port: healthPort,
    prometheus_port: promPort,
    tmp_dir: opts.tmpDir,
    logging: { level: 'info' },
    cpu_cost: { web_cpu_cost: 1, audio_web_cpu_cost: 0.5, ...(opts.cpuCost ?? {}) },
    // Tests find an egress's browser by the egress id in its command line: no warm pool (whose
    // browsers are launched before any egress id exists) unless a test asks for one.
    browser_pool_size: 0,
    ...(opts.extra ?? {}),
  };
  const body = stringify(config);
  const viaCli = process.env['EGRESS_SERVE_VIA_CLI'] === '1';
  const args = viaCli ? [CLI_ENTRY, 'serve', '--config-body', body] : [SERVE_ENTRY, '--config-body', body];
  const child = opts.tmpfsMb
    ? spawn(
        'unshare',
        [
          process.getuid?.() === 0 ? '-m' : '-Urm',
          'sh',
          '-c',
          'mkdir -p "$1" && mount -t tmpfs -o size="$2"m tmpfs "$1" && shift 2 && exec "$@"',
          'sh',
          opts.tmpDir,
          String(opts.tmpfsMb),
          process.execPath,
          ...args,
        ],
        { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      )
    : spawn(process.execPath, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out = (out + d.toString()).slice(-400_000);
    if (process.env['WORKER_LOGS']) process.stderr.write(`[${opts.name ?? 'worker'}] ${d.toString()}`);
    for (const l of [...listeners]) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const pid = child.pid as number;
  const w: WorkerProc = {
    name: opts.name ?? 'worker',
    child,
    pid,
    healthPort,
    promPort,
    exited,
    logs: () => out,
    waitForLog: (re, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        const timer = setTimeout(() => {
          listeners.delete(l);
          reject(new Error(`${opts.name ?? 'worker'} log never showed ${String(re)}:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const l = (): void => {
          if (re.test(out)) {
            clearTimeout(timer);
            listeners.delete(l);
            resolve();
          }
        };
        listeners.add(l);
      }),
    health: async () => (await (await fetch(`http://127.0.0.1:${healthPort}/`)).json()) as Record<string, unknown>,
    metrics: async () => (await fetch(`http://127.0.0.1:${promPort}/metrics`)).text(),
    handlers: () => handlerPids(pid),
    signal: (sig) => {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await exited;
    },
  };
  try {
    await Promise.race([
      w.waitForLog(/service ready/, 20_000),
      exited.then((e) => {
        throw new Error(`worker exited (${e.code ?? e.signal}) before ready:\n${out}`);
      }),
    ]);
  } catch (err) {
    // A worker that never got ready must not outlive the caller.
    await w.kill();
    throw err;
  }
  return w;
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function ppidOf(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Handler processes (children running handler-entry.js) of `workerPid`, by egress id. */
export function handlerPids(workerPid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    const argv = cmdline(pid);
    const i = argv.findIndex((a) => a.endsWith('handler-entry.js'));
    if (i < 0 || ppidOf(pid) !== workerPid) continue;
    out.set(argv[i + 1] ?? '', pid);
  }
  return out;
}

/** Pids of processes whose command line mentions `text` (e.g. an egress id in Chromium's profile dir). */
export function pidsMentioning(text: string, exclude: number[] = []): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    if (pid === process.pid || exclude.includes(pid)) continue;
    if (cmdline(pid).some((a) => a.includes(text))) out.push(pid);
  }
  return out;
}

export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
