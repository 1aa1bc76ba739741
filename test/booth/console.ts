import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { BoothState } from '../../main/contracts/ipc.js';
import { REPO_ROOT } from '../support/web-egress.js';

/** A real `egress console` process for the booth tests (free port, its own config and recordings dirs). */

export interface ConsoleProcess {
  readonly base: string;
  readonly port: number;
  readonly token: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** One booth operation over the JSON API with the Bearer token: status and parsed answer. */
  api<T = Record<string, unknown>>(op: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
  stop(): Promise<number | null>;
}

export async function startConsole(configDir: string, recordingsDir: string): Promise<ConsoleProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/egress.js'), 'console', '--port', '0', '--config-dir', configDir, '--recordings-dir', recordingsDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`egress console did not print its URL:\n${out}`)), 20_000);
    const check = (): void => {
      const m = /open (http:\/\/\S+\?token=[\w-]+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(new URL(m[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then(() => reject(new Error(`egress console exited:\n${out}`)));
  });
  const token = url.searchParams.get('token') ?? '';
  const base = `${url.origin}/`;
  return {
    base,
    port: Number(url.port),
    token,
    child,
    output: () => out,
    async api<T>(op: string, body: unknown = {}, headers: Record<string, string> = {}) {
      const res = await fetch(`${base}api/${op}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `check` until it returns a truthy value, or fails naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

type BoothRecording = NonNullable<BoothState['recording']>;

/**
 * Waits for the booth's recording to be ACTIVE with its start instant. A recording that failed to
 * start will never be ACTIVE: the wait fails at once with its error instead.
 */
export function waitActive(state: () => Promise<BoothState>): Promise<BoothRecording> {
  return waitFor('ACTIVE', async () => {
    const r = (await state()).recording;
    if (r?.status === 'FAILED') throw new Error(`the recording failed: ${r.error}`);
    return r?.status === 'ACTIVE' && r.startedAtMs > 0 ? r : null;
  });
}
