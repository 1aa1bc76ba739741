/**
 * Test harness: a throw-away redis-server on 127.0.0.1 (free port, no persistence, temp dir),
 * with restart on the same port for "Redis restarted while …" tests.
 *
 *   const redis = await startRedis();
 *   redis.url            // redis://127.0.0.1:<port>
 *   await redis.restart({ downMs: 500 });
 *   await redis.stop();
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOOPBACK = '127.0.0.1';

/** A free TCP port on 127.0.0.1 (bind to port 0, read it, close). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** A free UDP port on 127.0.0.1. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('error', reject);
    s.bind(0, LOOPBACK, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for a child to exit; SIGKILLs its process group after `graceMs`. */
export async function stopProcessGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (sig: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  };
  kill(signal);
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Sends PING over a raw socket; true on +PONG. */
export function redisPing(port: number, host = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

export interface RedisInstance {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** True while the server process runs. */
  readonly running: boolean;
  /** Everything redis-server printed (for failure messages). */
  output(): string;
  /** Starts it again on the same port (after stop/kill). */
  start(): Promise<void>;
  /** Stops it (SIGTERM, SIGKILL after a grace period); the temp dir stays for start(). */
  stop(): Promise<void>;
  /** Kills it hard (SIGKILL), like a crash. */
  kill(): Promise<void>;
  /** Stops, waits `downMs`, starts on the same port. `hard` uses SIGKILL. */
  restart(opts?: { downMs?: number; hard?: boolean }): Promise<void>;
  /** Stops and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

export interface StartRedisOptions {
  port?: number;
  binary?: string;
  /** How long to wait for PONG. Default 10 s. */
  readyTimeoutMs?: number;
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisInstance> {
  const port = opts.port ?? (await freeTcpPort());
  const dir = mkdtempSync(join(tmpdir(), 'egress-redis-'));
  const binary = opts.binary ?? process.env.REDIS_SERVER ?? 'redis-server';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let out = '';
  let closed = false;

  const launch = async (): Promise<void> => {
    const args = [
      '--port', String(port),
      '--bind', LOOPBACK,
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--logfile', '',
      '--loglevel', 'warning',
    ];
    const c = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    c.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const spawnError = new Promise<never>((_, reject) => c.once('error', (e) => reject(e)));
    const deadline = Date.now() + readyTimeoutMs;
    const ready = (async () => {
      while (Date.now() < deadline) {
        if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}): ${out}`);
        if (await redisPing(port)) return;
        await sleep(50);
      }
      throw new Error(`redis-server not ready on ${port} after ${readyTimeoutMs} ms: ${out}`);
    })();
    try {
      await Promise.race([ready, spawnError]);
    } catch (err) {
      await stopProcessGroup(c, 'SIGKILL');
      throw err;
    }
  };

  await launch();

  const inst: RedisInstance = {
    host: LOOPBACK,
    port,
    url: `redis://${LOOPBACK}:${port}`,
    dir,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    output: () => out,
    start: async () => {
      if (closed) throw new Error('redis harness closed');
      if (inst.running) return;
      await launch();
    },
    stop: async () => {
      if (child) await stopProcessGroup(child, 'SIGTERM');
    },
    kill: async () => {
      if (child) await stopProcessGroup(child, 'SIGKILL');
    },
    restart: async ({ downMs = 0, hard = false } = {}) => {
      await (hard ? inst.kill() : inst.stop());
      if (downMs > 0) await sleep(downMs);
      await inst.start();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await inst.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return inst;
}
