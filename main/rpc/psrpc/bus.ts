/**
 * The Redis transport of psrpc: plain PUBLISH/SUBSCRIBE of `internal.Msg` envelopes plus the
 * `SET key rand EX 5 NX` queue lock. One subscriber connection (binary `messageBuffer`), one
 * command connection. ioredis reconnects and re-subscribes by itself (`autoResubscribe`).
 *
 * Robustness: every received payload is size-checked, decoded and type-checked against the kind
 * its channel carries; anything else is counted, logged (rate-limited) and dropped. Publishing is
 * guarded the same way: a message can only go to a channel whose suffix names its kind.
 */
import { createHash, randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { MessageType } from '@bufbuild/protobuf';
import { logger } from '../../log.js';
import { channelSuffix } from './channels.js';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_TYPES, EnvelopeError } from './internal.js';
import type { EnvelopeKind, EnvelopeTypes } from './internal.js';

const log = logger('psrpc');

/** Go's `lockExpiration`. */
export const QUEUE_LOCK_TTL_SECONDS = 5;
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

export interface RedisBusOptions {
  /** ioredis options, a redis:// URL, or an existing client (duplicated for subscribing; not closed by us). */
  redis: RedisOptions | string | Redis;
  /** Received payloads larger than this are dropped undecoded. Default 4 MiB. */
  maxPayloadBytes?: number;
  /** How long connect() waits for both connections to be ready. Default 10 s. */
  connectTimeoutMs?: number;
}

export type BusHandler<K extends EnvelopeKind> = (msg: EnvelopeTypes[K], payload: Buffer) => void;

export interface BusStats {
  received: number;
  dropped: number;
  published: number;
}

interface HandlerEntry {
  kind: EnvelopeKind;
  fn: (msg: never, payload: Buffer) => void;
}

/** Rate-limited warning for dropped traffic (a flood must not flood the log). */
class DropLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;
  constructor(
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
  ) {}
  warn(message: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) log.warn(`psrpc: ${this.suppressed} more dropped messages not logged`);
      this.windowStart = now;
      this.inWindow = 0;
      this.suppressed = 0;
    }
    if (this.inWindow < this.perWindow) {
      this.inWindow++;
      log.warn(message, fields);
    } else {
      this.suppressed++;
    }
  }
}

function kindOfChannel(channel: string): EnvelopeKind | undefined {
  const s = channelSuffix(channel);
  return s === 'REQ' || s === 'RCLAIM' || s === 'CLAIM' || s === 'RES' ? s : undefined;
}

export class RedisBus {
  readonly stats: BusStats = { received: 0, dropped: 0, published: 0 };
  private readonly handlers = new Map<string, Set<HandlerEntry>>();
  /** Serializes SUBSCRIBE/UNSUBSCRIBE per channel. */
  private readonly channelOps = new Map<string, Promise<void>>();
  private readonly dropLog = new DropLog();
  private readonly errLog = new DropLog(3, 30_000);
  private closed = false;

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly ownsPub: boolean,
    private readonly maxPayloadBytes: number,
  ) {
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onMessage(channel, payload));
    for (const [name, conn] of [
      ['pub', this.pub],
      ['sub', this.sub],
    ] as const) {
      conn.on('error', (err: Error) => this.errLog.warn(`psrpc: redis ${name} connection error`, { error: err.message }));
      conn.on('reconnecting', () => log.verbose(`psrpc: redis ${name} reconnecting`));
      conn.on('ready', () => log.verbose(`psrpc: redis ${name} ready`));
    }
  }

  /** Opens the two connections and waits until both are ready. */
  static async connect(opts: RedisBusOptions): Promise<RedisBus> {
    const base: RedisOptions = { autoResubscribe: true, maxRetriesPerRequest: null, enableReadyCheck: true };
    let pub: Redis;
    let owns = true;
    if (opts.redis instanceof Redis) {
      pub = opts.redis;
      owns = false;
    } else if (typeof opts.redis === 'string') {
      pub = new Redis(opts.redis, base);
    } else {
      pub = new Redis({ ...base, ...opts.redis });
    }
    const sub = pub.duplicate({ autoResubscribe: true, maxRetriesPerRequest: null });
    const bus = new RedisBus(pub, sub, owns, opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    try {
      await Promise.all([waitReady(pub, timeoutMs), waitReady(sub, timeoutMs)]);
    } catch (err) {
      await bus.close();
      throw err;
    }
    return bus;
  }

  /** The command connection (PUBLISH, SET NX); exposed for callers that need plain Redis too. */
  get redis(): Redis {
    return this.pub;
  }

  /**
   * Subscribes `fn` to `channel`, whose suffix must be `kind`. Resolves once Redis confirmed the
   * subscription. Returns an idempotent unsubscribe function.
   */
  async subscribe<K extends EnvelopeKind>(channel: string, kind: K, fn: BusHandler<K>): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('psrpc bus is closed');
    if (kindOfChannel(channel) !== kind) throw new Error(`channel ${channel} does not carry ${kind}`);
    const entry: HandlerEntry = { kind, fn: fn as HandlerEntry['fn'] };
    let set = this.handlers.get(channel);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(entry);
    if (first) {
      try {
        await this.channelOp(channel, async () => {
          await this.sub.subscribe(channel);
        });
      } catch (err) {
        set.delete(entry);
        if (set.size === 0) this.handlers.delete(channel);
        throw err;
      }
    } else {
      // Wait for an in-flight SUBSCRIBE of the same channel.
      await this.channelOps.get(channel);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const s = this.handlers.get(channel);
      if (!s) return;
      s.delete(entry);
      if (s.size > 0) return;
      this.handlers.delete(channel);
      if (this.closed) return;
      await this.channelOp(channel, async () => {
        // A new subscriber may have arrived while we queued.
        if (!this.handlers.has(channel)) await this.sub.unsubscribe(channel);
      }).catch((err: unknown) => log.warn('psrpc: unsubscribe failed', { channel, error: String(err) }));
    };
  }

  private channelOp(channel: string, op: () => Promise<void>): Promise<void> {
    const prev = this.channelOps.get(channel) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(op);
    this.channelOps.set(channel, next);
    void next.finally(() => {
      if (this.channelOps.get(channel) === next) this.channelOps.delete(channel);
    }).catch(() => undefined);
    return next;
  }

  /** Channels this bus is subscribed to (for diagnostics and tests). */
  subscribedChannels(): string[] {
    return [...this.handlers.keys()];
  }

  /** Publishes `msg` wrapped in its envelope. Refuses a channel whose suffix is not `kind`. */
  async publish<K extends EnvelopeKind>(channel: string, kind: K, msg: EnvelopeTypes[K]): Promise<void> {
    if (this.closed) throw new Error('psrpc bus is closed');
    if (kindOfChannel(channel) !== kind) throw new Error(`refusing to publish ${kind} on ${channel}`);
    const type = ENVELOPE_TYPES[kind];
    if (msg.getType().typeName !== type.typeName) throw new Error(`refusing to publish ${msg.getType().typeName} as ${kind}`);
    const payload = encodeEnvelope(type as MessageType, msg);
    await this.pub.publish(channel, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    this.stats.published++;
  }

  /**
   * Takes psrpc's queue lock for a received payload: `SET base64(sha256(payload)) <rand> EX 5 NX`.
   * True if this process won it.
   */
  async queueLock(payload: Buffer): Promise<boolean> {
    const key = queueLockKey(payload);
    const res = await this.pub.set(key, String(randomInt(2 ** 47)), 'EX', QUEUE_LOCK_TTL_SECONDS, 'NX');
    return res === 'OK';
  }

  /** Counts and logs (rate-limited) a dropped message. */
  drop(reason: string, fields: Record<string, unknown> = {}): void {
    this.stats.dropped++;
    this.dropLog.warn(`psrpc: dropped message: ${reason}`, fields);
  }

  private onMessage(channelBuf: Buffer, payload: Buffer): void {
    this.stats.received++;
    const channel = channelBuf.toString('latin1');
    const set = this.handlers.get(channel);
    if (!set || set.size === 0) return; // late message after unsubscribe
    if (payload.length > this.maxPayloadBytes) {
      this.drop('payload too large', { channel, bytes: payload.length });
      return;
    }
    const kind = kindOfChannel(channel);
    if (!kind) {
      this.drop('unknown channel kind', { channel });
      return;
    }
    let msg: EnvelopeTypes[typeof kind];
    try {
      msg = decodeEnvelope(ENVELOPE_TYPES[kind] as never, payload) as EnvelopeTypes[typeof kind];
    } catch (err) {
      this.drop(err instanceof EnvelopeError ? err.message : 'decode failed', { channel });
      return;
    }
    for (const entry of [...set]) {
      try {
        entry.fn(msg as never, payload);
      } catch (err) {
        log.error('psrpc: handler threw', { channel, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** Closes the connections (the command connection only if we created it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await quit(this.sub);
    if (this.ownsPub) await quit(this.pub);
  }
}

/** `base64std(sha256(payload))`, psrpc's queue lock key. */
export function queueLockKey(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('base64');
}

async function quit(conn: Redis): Promise<void> {
  try {
    if (conn.status === 'ready') await conn.quit();
    else conn.disconnect();
  } catch {
    conn.disconnect();
  }
}

function waitReady(conn: Redis, timeoutMs: number): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${timeoutMs} ms (status ${conn.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('redis connection ended'));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      conn.off('ready', onReady);
      conn.off('end', onEnd);
    };
    conn.on('ready', onReady);
    conn.on('end', onEnd);
  });
}
