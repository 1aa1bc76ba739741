/**
 * Test harness: a real livekit-server v1.13.5 (built by scripts/install-livekit.sh into
 * .cache/bin/livekit-server) on 127.0.0.1 with free HTTP/TCP/UDP ports, pointed at a Redis.
 *
 *   const redis = await startRedis();
 *   const lk = await startLivekit({ redis });
 *   new EgressClient(lk.url, lk.apiKey, lk.apiSecret);
 *   await lk.stop();
 *
 * If the binary is missing, `livekitBinary()` returns undefined; tests should skip (and say so).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freeTcpPort, freeUdpPort, LOOPBACK, sleep, stopProcessGroup } from './redis.js';

export const LIVEKIT_VERSION = '1.13.5';
export const DEV_API_KEY = 'devkey';
export const DEV_API_SECRET = 'secret';

/** Repository root: this file is test/harness/livekit.ts (or dist/test/harness/livekit.js). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/** Path of the livekit-server binary: $LIVEKIT_SERVER_BIN or <repo>/.cache/bin/livekit-server. */
export function livekitBinary(): string | undefined {
  const p = process.env.LIVEKIT_SERVER_BIN ?? resolve(repoRoot(), '.cache/bin/livekit-server');
  return existsSync(p) ? p : undefined;
}

export interface StartLivekitOptions {
  redis: { host: string; port: number };
  apiKey?: string;
  apiSecret?: string;
  webhookUrls?: string[];
  /** psrpc client config of livekit-server (max_attempts, timeout, backoff, buffer_size). */
  psrpc?: { max_attempts?: number; timeout?: string; backoff?: string; buffer_size?: number };
  /** Merged at the top level of the generated YAML. */
  extraConfig?: Record<string, unknown>;
  /** Start with `--dev` (default true). */
  dev?: boolean;
  binary?: string;
  readyTimeoutMs?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface LivekitInstance {
  /** http://127.0.0.1:<port> (Twirp API and health). */
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly apiKey: string;
  readonly apiSecret: string;
  readonly configPath: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Last ~200 kB of livekit-server output. */
  logs(): string;
  /** Resolves when the output contains `text` (or rejects after timeoutMs). */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM the process group, SIGKILL after a grace period, remove temp files. Idempotent. */
  stop(): Promise<void>;
  /**
   * Kills the server (SIGKILL by default: a crash), waits `downMs`, and starts it again on the same
   * ports with the same config and Redis (what it kept in Redis survives). Resolves once healthy.
   */
  restart(opts?: { downMs?: number; signal?: NodeJS.Signals }): Promise<void>;
  /** Kills the server (SIGKILL by default) and leaves it down; `startAgain()` brings it back. */
  crash(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a crashed server again on the same ports and config; resolves once healthy. */
  startAgain(): Promise<void>;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.text();
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function startLivekit(opts: StartLivekitOptions): Promise<LivekitInstance> {
  const binary = opts.binary ?? livekitBinary();
  if (!binary) throw new Error('livekit-server binary not found; run: bash scripts/install-livekit.sh');
  const apiKey = opts.apiKey ?? DEV_API_KEY;
  const apiSecret = opts.apiSecret ?? DEV_API_SECRET;
  const [port, tcpPort, udpPort] = await Promise.all([freeTcpPort(), freeTcpPort(), freeUdpPort()]);
  const dir = mkdtempSync(join(tmpdir(), 'egress-livekit-'));
  const config: Record<string, unknown> = {
    port,
    bind_addresses: [LOOPBACK],
    rtc: {
      tcp_port: tcpPort,
      udp_port: udpPort,
      use_external_ip: false,
      node_ip: LOOPBACK,
      enable_loopback_candidate: true,
    },
    redis: { address: `${opts.redis.host}:${opts.redis.port}` },
    keys: { [apiKey]: apiSecret },
    logging: { level: opts.logLevel ?? 'info' },
    ...(opts.webhookUrls?.length ? { webhook: { api_key: apiKey, urls: opts.webhookUrls } } : {}),
    ...(opts.psrpc ? { psrpc: opts.psrpc } : {}),
    ...(opts.extraConfig ?? {}),
  };
  const configPath = join(dir, 'livekit.yaml');
  writeFileSync(configPath, stringify(config));

  const args = [...((opts.dev ?? true) ? ['--dev'] : []), '--config', configPath];
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out = (out + d.toString()).slice(-200_000);
    for (const l of [...listeners]) l();
  };
  const spawnServer = (): ChildProcess => {
    const c = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    c.stdout?.on('data', onData);
    c.stderr?.on('data', onData);
    return c;
  };
  let child = spawnServer();
  let stopped = false;

  const url = `http://${LOOPBACK}:${port}`;
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const waitHealthy = async (c: ChildProcess): Promise<void> => {
    const spawnError = new Promise<never>((_, reject) => c.once('error', reject));
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    const ready = (async () => {
      while (Date.now() < deadline) {
        if (!running()) throw new Error(`livekit-server exited (${c.exitCode ?? c.signalCode}):\n${out.slice(-5000)}`);
        if (await healthy(url)) return;
        await sleep(100);
      }
      throw new Error(`livekit-server not healthy at ${url}:\n${out.slice(-5000)}`);
    })();
    await Promise.race([ready, spawnError]);
  };
  const inst: LivekitInstance = {
    url,
    wsUrl: `ws://${LOOPBACK}:${port}`,
    port,
    apiKey,
    apiSecret,
    configPath,
    get pid() {
      return child.pid;
    },
    get running() {
      return running();
    },
    logs: () => out,
    waitForLog: (text, timeoutMs = 10_000) =>
      new Promise<void>((resolveWait, reject) => {
        const check = (): boolean => (typeof text === 'string' ? out.includes(text) : text.test(out));
        if (check()) return resolveWait();
        const timer = setTimeout(() => {
          listeners.delete(l);
          reject(new Error(`livekit-server log never showed ${String(text)}`));
        }, timeoutMs);
        const l = (): void => {
          if (check()) {
            clearTimeout(timer);
            listeners.delete(l);
            resolveWait();
          }
        };
        listeners.add(l);
      }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopProcessGroup(child, 'SIGTERM', 5000);
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async ({ downMs = 0, signal = 'SIGKILL' } = {}) => {
      await inst.crash(signal);
      if (downMs > 0) await sleep(downMs);
      await inst.startAgain();
    },
    crash: async (signal = 'SIGKILL') => {
      if (stopped) throw new Error('livekit-server was stopped');
      await stopProcessGroup(child, signal, 5000);
    },
    startAgain: async () => {
      if (stopped) throw new Error('livekit-server was stopped');
      if (running()) return;
      child = spawnServer();
      await waitHealthy(child);
    },
  };

  try {
    await waitHealthy(child);
  } catch (err) {
    await inst.stop();
    throw err;
  }
  return inst;
}

/**
 * Asserts that a call through livekit-server's API (livekit-server-sdk) rejects with the Twirp code,
 * HTTP status and message the server returns.
 */
export async function expectTwirpError(p: Promise<unknown>, code: string, status: number, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = err as { code?: string; status?: number; message?: string };
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.status, status);
    assert.match(e.message ?? '', message);
    return true;
  });
}
