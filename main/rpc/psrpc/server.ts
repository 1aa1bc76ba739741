/**
 * psrpc server: serves unary (claim-based or not) and multi-response methods on Redis.
 * Behaviour follows psrpc v0.7.2 `pkg/server/rpc.go`.
 */
import type { Message } from '@bufbuild/protobuf';
import { logger } from '../../log.js';
import type { RedisBus } from './bus.js';
import { claimRequestChannel, claimResponseChannel, requestChannel, responseChannel } from './channels.js';
import type { Topic } from './channels.js';
import { PsrpcError, toWireError } from './errors.js';
import { newServerId } from './ids.js';
import { ClaimRequest, nowNs, Response } from './internal.js';
import type { ClaimResponse, Request } from './internal.js';
import type { MethodInfo } from './types.js';

const log = logger('psrpc');

/** What a handler learns about the request besides its payload. */
export interface RequestContext {
  readonly requestId: string;
  readonly clientId: string;
  /** Unix ns. */
  readonly sentAt: bigint;
  /** Unix ns deadline (the request's expiry). */
  readonly expiry: bigint;
  readonly metadata: Readonly<Record<string, string>>;
  readonly topic: readonly string[];
  /** Aborted when the request expires or the server closes. */
  readonly signal: AbortSignal;
}

/** Returns the response; `undefined` sends an empty `raw_response` (e.g. google.protobuf.Empty). */
export type Handler<Req, Res> = (req: Req, ctx: RequestContext) => Promise<Res | undefined> | Res | undefined;

/** Affinity of this server for a request: float32 > 0 to be selectable, < 0 to stay silent. */
export type AffinityFunc<Req> = (req: Req, ctx: RequestContext) => number | Promise<number>;

export interface RegisterOptions<Req> {
  /** Only used for claim-based methods; default 1. Ignored (1) when the method has no affinity. */
  affinity?: AffinityFunc<Req>;
}

export interface PsrpcServerOptions {
  /** Default: random `SRV_` + 12 alphanumerics. */
  serverId?: string;
  /** Upper bound on waiting for a ClaimResponse (Go waits until expiry). Default 30 s. */
  maxClaimWaitMs?: number;
  /** Requests handled concurrently; more are dropped with a log line. Default 1000. */
  maxInFlight?: number;
  /**
   * Go answers a request whose raw_request does not decode with `malformed_request`. Default true;
   * false drops it silently.
   */
  respondMalformed?: boolean;
}

export interface ServerStats {
  handled: number;
  claimed: number;
  lostClaims: number;
  expired: number;
  malformed: number;
  overloaded: number;
}

/** A registered method+topic; close() unsubscribes it (in-flight requests still finish). */
export interface Registration {
  readonly method: string;
  readonly topic: readonly string[];
  readonly channels: readonly string[];
  close(): Promise<void>;
}

/** Longer request/client ids are not psrpc's and would make absurd channel names. */
const MAX_ID_LENGTH = 256;

/** setTimeout delays above 2^31-1 ms overflow to 1 ms in Node. */
function clampDelay(ms: number): number {
  return Math.min(Math.max(0, ms), 2 ** 31 - 1);
}

function topicList(topic: Topic): string[] {
  if (topic === undefined) return [];
  return typeof topic === 'string' ? [topic] : [...topic];
}

export class PsrpcServer {
  readonly id: string;
  readonly stats: ServerStats = { handled: 0, claimed: 0, lostClaims: 0, expired: 0, malformed: 0, overloaded: 0 };
  private readonly pendingClaims = new Map<string, (winner: string) => void>();
  private readonly registrations = new Map<string, Registration>();
  private readonly closing = new AbortController();
  private readonly maxClaimWaitMs: number;
  private readonly maxInFlight: number;
  private readonly respondMalformed: boolean;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly bus: RedisBus,
    opts: PsrpcServerOptions = {},
  ) {
    this.id = opts.serverId ?? newServerId();
    this.maxClaimWaitMs = opts.maxClaimWaitMs ?? 30_000;
    this.maxInFlight = opts.maxInFlight ?? 1000;
    this.respondMalformed = opts.respondMalformed ?? true;
  }

  /** Number of requests being handled right now. */
  get activeRequests(): number {
    return this.inFlight;
  }

  /**
   * Serves `method` on `topic`. Resolves once the REQ (and RCLAIM) subscriptions are confirmed by
   * Redis. Registering the same method+topic twice throws.
   */
  async register<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    topic: Topic,
    handler: Handler<Req, Res>,
    opts: RegisterOptions<Req> = {},
  ): Promise<Registration> {
    const topics = topicList(topic);
    const reqChannel = requestChannel(method.service, method.method, topics);
    if (this.registrations.has(reqChannel)) throw new Error(`${reqChannel} is already registered`);
    const unsubs: Array<() => Promise<void>> = [];
    const channels: string[] = [];
    try {
      if (method.requireClaim && !method.multi) {
        const rclaim = claimResponseChannel(method.service, method.method, topics);
        unsubs.push(await this.bus.subscribe(rclaim, 'RCLAIM', (m: ClaimResponse) => this.onClaimResponse(m)));
        channels.push(rclaim);
      }
      unsubs.push(
        await this.bus.subscribe(reqChannel, 'REQ', (req: Request, payload: Buffer) => {
          void this.onRequest(method, topics, handler, opts, req, payload).catch((err: unknown) =>
            log.error('psrpc: request handling failed', { method: method.method, error: String(err) }),
          );
        }),
      );
      channels.push(reqChannel);
    } catch (err) {
      await Promise.all(unsubs.map((u) => u()));
      throw err;
    }
    const reg: Registration = {
      method: method.method,
      topic: topics,
      channels,
      close: async () => {
        if (this.registrations.get(reqChannel) !== reg) return;
        this.registrations.delete(reqChannel);
        // Stop taking requests first, then claims (as Go does).
        for (const u of [...unsubs].reverse()) await u();
      },
    };
    this.registrations.set(reqChannel, reg);
    return reg;
  }

  /** Unregisters `method` on `topic` if registered. */
  async deregister(method: MethodInfo<never, never> | { service: string; method: string }, topic: Topic): Promise<void> {
    await this.registrations.get(requestChannel(method.service, method.method, topicList(topic)))?.close();
  }

  /** True if `method` is registered on `topic`. */
  isRegistered(method: { service: string; method: string }, topic: Topic): boolean {
    return this.registrations.has(requestChannel(method.service, method.method, topicList(topic)));
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Unregisters everything; with `force` aborts in-flight handlers, otherwise waits for them. */
  async close(force = false): Promise<void> {
    await Promise.all([...this.registrations.values()].map((r) => r.close()));
    if (force) {
      this.closing.abort();
      // Claims still waiting for a ClaimResponse give up now instead of at expiry.
      for (const resolve of this.pendingClaims.values()) resolve('');
    }
    await this.idle();
    this.closing.abort();
  }

  private onClaimResponse(m: ClaimResponse): void {
    const resolve = this.pendingClaims.get(m.requestId);
    if (resolve) resolve(m.serverId);
  }

  private async onRequest<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    topics: readonly string[],
    handler: Handler<Req, Res>,
    opts: RegisterOptions<Req>,
    ir: Request,
    payload: Buffer,
  ): Promise<void> {
    const now = nowNs();
    if (!(now < ir.expiry)) {
      this.stats.expired++;
      this.bus.drop('expired request', { method: method.method, requestId: ir.requestId.slice(0, 64) });
      return;
    }
    if (ir.requestId === '' || ir.clientId === '' || ir.requestId.length > MAX_ID_LENGTH || ir.clientId.length > MAX_ID_LENGTH) {
      this.bus.drop('request with a missing or oversized request_id/client_id', { method: method.method });
      return;
    }
    if (this.inFlight >= this.maxInFlight) {
      this.stats.overloaded++;
      this.bus.drop('too many requests in flight', { method: method.method });
      return;
    }
    this.inFlight++;
    try {
      await this.handleRequest(method, topics, handler, opts, ir, payload);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private async handleRequest<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    topics: readonly string[],
    handler: Handler<Req, Res>,
    opts: RegisterOptions<Req>,
    ir: Request,
    payload: Buffer,
  ): Promise<void> {
    if (method.queue && !(await this.bus.queueLock(payload))) return;

    const expiryMs = Number(ir.expiry / 1_000_000n);
    const ac = new AbortController();
    const onClose = (): void => ac.abort(new PsrpcError('canceled', 'server closing'));
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    const timer = setTimeout(() => ac.abort(new PsrpcError('deadline_exceeded', 'request expired')), clampDelay(expiryMs - Date.now()));
    const ctx: RequestContext = {
      requestId: ir.requestId,
      clientId: ir.clientId,
      sentAt: ir.sentAt,
      expiry: ir.expiry,
      metadata: ir.metadata,
      topic: topics,
      signal: ac.signal,
    };
    try {
      let req: Req;
      try {
        req = method.requestType.fromBinary(ir.rawRequest, { readUnknownFields: false });
      } catch (err) {
        this.stats.malformed++;
        this.bus.drop('malformed raw_request', { method: method.method, error: (err as Error).message });
        if (this.respondMalformed) {
          await this.sendResponse(method, ir, undefined, new PsrpcError('malformed_request', (err as Error).message || 'malformed request'));
        }
        return;
      }

      if (method.requireClaim && !method.multi) {
        if (!(await this.claim(method, opts, req, ctx, expiryMs))) return;
      }

      let res: Res | undefined;
      let error: unknown;
      try {
        res = await handler(req, ctx);
      } catch (err) {
        error = err ?? new Error('handler failed');
      }
      this.stats.handled++;
      await this.sendResponse(method, ir, res, error);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  private async claim<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    opts: RegisterOptions<Req>,
    req: Req,
    ctx: RequestContext,
    expiryMs: number,
  ): Promise<boolean> {
    let affinity = 1;
    if (method.affinityEnabled && opts.affinity) {
      try {
        affinity = await opts.affinity(req, ctx);
      } catch (err) {
        log.warn('psrpc: affinity function threw; not claiming', { method: method.method, error: String(err) });
        return false;
      }
      if (!Number.isFinite(affinity) || affinity < 0) return false;
    }
    // Register before publishing: the ClaimResponse can come back at once.
    let resolveWinner: (winner: string) => void = () => undefined;
    const winner = new Promise<string>((resolve) => (resolveWinner = resolve));
    this.pendingClaims.set(ctx.requestId, resolveWinner);
    const wait = setTimeout(() => resolveWinner(''), clampDelay(Math.min(expiryMs - Date.now(), this.maxClaimWaitMs)));
    try {
      await this.bus.publish(
        claimRequestChannel(method.service, ctx.clientId),
        'CLAIM',
        new ClaimRequest({ requestId: ctx.requestId, serverId: this.id, affinity }),
      );
      const w = await winner;
      if (w === this.id) {
        this.stats.claimed++;
        return true;
      }
      this.stats.lostClaims++;
      return false;
    } finally {
      clearTimeout(wait);
      this.pendingClaims.delete(ctx.requestId);
    }
  }

  private async sendResponse<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    ir: Request,
    res: Res | undefined,
    error: unknown,
  ): Promise<void> {
    const out = new Response({ requestId: ir.requestId, serverId: this.id, sentAt: nowNs() });
    if (error !== undefined) {
      const w = toWireError(error);
      out.error = w.error;
      out.code = w.code;
      out.errorDetails = [...w.details];
    } else if (res !== undefined && res !== null) {
      try {
        out.rawResponse = res.toBinary();
      } catch (err) {
        out.error = (err as Error).message || 'malformed result';
        out.code = 'malformed_result';
      }
    }
    await this.bus.publish(responseChannel(method.service, ir.clientId), 'RES', out);
  }
}
