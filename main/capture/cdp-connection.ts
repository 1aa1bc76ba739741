import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/**
 * A DevTools-protocol channel over Chromium's `--remote-debugging-pipe` (fd 3 = commands to the
 * browser, fd 4 = replies/events, NUL-terminated JSON). No port is opened, so nothing else on the
 * machine can drive the browser. Request ids, a pending map with per-call timeouts, and rejection of
 * every pending call when the pipe closes.
 */

export interface CdpEvent {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly sessionId?: string;
}

interface Pending {
  readonly method: string;
  readonly resolve: (v: Record<string, unknown>) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class CdpError extends Error {
  constructor(
    message: string,
    readonly method: string,
  ) {
    super(message);
    this.name = 'CdpError';
  }
}

export interface CdpConnectionEvents {
  event: [CdpEvent];
  close: [];
}

export class CdpConnection extends EventEmitter<CdpConnectionEvents> {
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #closed = false;
  #buffer: Buffer[] = [];

  constructor(
    private readonly out: Writable,
    input: Readable,
    private readonly defaultTimeoutMs = 30_000,
  ) {
    super();
    input.on('data', (chunk: Buffer) => this.#onData(chunk));
    input.on('close', () => this.close());
    input.on('error', () => this.close());
    out.on('error', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one command; `sessionId` targets an attached page (flatten mode). */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string, timeoutMs = this.defaultTimeoutMs): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(new CdpError(`CDP connection closed [method:${method}]`, method));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new CdpError(`CDP call timed out after ${timeoutMs} ms [method:${method}]`, method));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve, reject, timer });
      const msg = sessionId ? { id, method, params, sessionId } : { id, method, params };
      this.out.write(JSON.stringify(msg) + '\0');
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new CdpError(`CDP connection closed, pending call aborted [method:${p.method}]`, p.method));
    }
    this.#pending.clear();
    this.emit('close');
  }

  #onData(chunk: Buffer): void {
    let start = 0;
    for (let i = chunk.indexOf(0); i !== -1; i = chunk.indexOf(0, start)) {
      this.#buffer.push(chunk.subarray(start, i));
      const text = Buffer.concat(this.#buffer).toString('utf8');
      this.#buffer = [];
      start = i + 1;
      this.#dispatch(text);
    }
    if (start < chunk.length) this.#buffer.push(chunk.subarray(start));
  }

  #dispatch(text: string): void {
    let msg: { id?: number; result?: Record<string, unknown>; error?: { message?: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.id === 'number') {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new CdpError(`${msg.error.message ?? 'CDP error'} [method:${p.method}]`, p.method));
      else p.resolve(msg.result ?? {});
      return;
    }
    if (typeof msg.method === 'string') {
      const ev: CdpEvent = msg.sessionId
        ? { method: msg.method, params: msg.params ?? {}, sessionId: msg.sessionId }
        : { method: msg.method, params: msg.params ?? {} };
      // Events are emitted after the current tick so that a reply resolved in the same chunk is
      // observed by its awaiting caller before later events (ordering as mediasoup's Channel).
      setImmediate(() => this.emit('event', ev));
    }
  }
}
