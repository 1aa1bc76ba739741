/**
 * psrpc client: unary calls (with claim/affinity selection) and multi-response calls on Redis.
 * Behaviour follows psrpc v0.7.2 `pkg/client/rpc.go` and `multi.go`.
 */
import type { Message } from '@bufbuild/protobuf';
import { logger } from '../../log.js';
import type { RedisBus } from './bus.js';
import { claimRequestChannel, claimResponseChannel, requestChannel, responseChannel } from './channels.js';
import type { Topic } from './channels.js';
import { errNoResponse, errNoServersAvailable, errRequestCanceled, errRequestTimedOut, PsrpcError } from './errors.js';
import { isChannelSafeId, newClientId, newRequestId } from './ids.js';
import { ClaimResponse, nowNs, Request } from './internal.js';
import type { ClaimRequest, Response } from './internal.js';
import type { MethodInfo } from './types.js';

const log = logger('psrpc');

/** psrpc `SelectionOpts` (durations in ms). */
export interface SelectionOptions {
  /** Claims below this are ignored (when > 0). */
  minimumAffinity?: number;
  /** A claim at or above this wins at once (when > 0). */
  maximumAffinity?: number;
  /** The first valid claim wins. */
  acceptFirstAvailable?: boolean;
  /** Selection window; 0 = until the request times out. */
  affinityTimeoutMs?: number;
  /** After the first valid claim, selection ends this much later (when > 0). */
  shortCircuitTimeoutMs?: number;
}

export interface CallOptions {
  /** Request timeout T (also sets `expiry = sent_at + T`). Default: the client's timeout (3 s). */
  timeoutMs?: number;
  /** Overrides fields of the default selection for this call. */
  selection?: SelectionOptions;
  signal?: AbortSignal;
  metadata?: Record<string, string>;
}

export interface PsrpcClientOptions {
  /** Default random `CLI_…`; must match `[A-Za-z0-9_]+`. */
  clientId?: string;
  /** Default request timeout. psrpc default 3 s. */
  timeoutMs?: number;
  /** Default selection window (psrpc `SelectionTimeout`, default 1 s). */
  selectionTimeoutMs?: number;
}

/** One answer of a multi-response call. */
export type MultiResult<Res> = { serverId: string; value: Res; error?: undefined } | { serverId: string; value?: undefined; error: PsrpcError };

interface Pending {
  onClaim?: (c: ClaimRequest) => void;
  onResponse: (r: Response) => void;
  cancel: () => void;
}

export const DEFAULT_TIMEOUT_MS = 3000;
export const DEFAULT_SELECTION_TIMEOUT_MS = 1000;
export const DEFAULT_SHORT_CIRCUIT_MS = 200;

export class PsrpcClient {
  readonly id: string;
  private readonly pending = new Map<string, Pending>();
  private readonly services = new Map<string, Promise<Array<() => Promise<void>>>>();
  private readonly timeoutMs: number;
  private readonly selectionTimeoutMs: number;
  private closed = false;

  constructor(
    private readonly bus: RedisBus,
    opts: PsrpcClientOptions = {},
  ) {
    this.id = opts.clientId ?? newClientId();
    if (!isChannelSafeId(this.id)) throw new Error(`client id ${this.id} is not channel-safe`);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.selectionTimeoutMs = opts.selectionTimeoutMs ?? DEFAULT_SELECTION_TIMEOUT_MS;
  }

  /**
   * Subscribes `Service|<id>|RES` and `Service|<id>|CLAIM` for each service (idempotent). call()
   * does this lazily; calling it at startup makes the channels visible to peers early.
   */
  async ready(...services: string[]): Promise<void> {
    await Promise.all(services.map((s) => this.ensureService(s)));
  }

  private ensureService(service: string): Promise<unknown> {
    let p = this.services.get(service);
    if (!p) {
      p = (async () => {
        const unsubs: Array<() => Promise<void>> = [];
        unsubs.push(await this.bus.subscribe(responseChannel(service, this.id), 'RES', (r: Response) => this.onResponse(r)));
        unsubs.push(await this.bus.subscribe(claimRequestChannel(service, this.id), 'CLAIM', (c: ClaimRequest) => this.onClaim(c)));
        return unsubs;
      })();
      this.services.set(service, p);
      p.catch(() => this.services.delete(service));
    }
    return p;
  }

  private onResponse(r: Response): void {
    const p = this.pending.get(r.requestId);
    if (p) p.onResponse(r);
  }

  private onClaim(c: ClaimRequest): void {
    const p = this.pending.get(c.requestId);
    if (p?.onClaim) p.onClaim(c);
  }

  private defaultSelection(method: MethodInfo<never, never> | { affinityEnabled: boolean }): Required<SelectionOptions> {
    return method.affinityEnabled
      ? {
          minimumAffinity: 0,
          maximumAffinity: 0,
          acceptFirstAvailable: false,
          affinityTimeoutMs: this.selectionTimeoutMs,
          shortCircuitTimeoutMs: DEFAULT_SHORT_CIRCUIT_MS,
        }
      : {
          minimumAffinity: 0,
          maximumAffinity: 0,
          acceptFirstAvailable: true,
          affinityTimeoutMs: this.selectionTimeoutMs,
          shortCircuitTimeoutMs: 0,
        };
  }

  private buildRequest(method: { multi: boolean }, rawRequest: Uint8Array, timeoutMs: number, metadata?: Record<string, string>): Request {
    const sentAt = nowNs();
    return new Request({
      requestId: newRequestId(),
      clientId: this.id,
      sentAt,
      expiry: sentAt + BigInt(Math.round(timeoutMs)) * 1_000_000n,
      multi: method.multi,
      metadata: metadata ?? {},
      rawRequest,
    });
  }

  /** Calls a unary method: publish, select a claiming server (if required), await its Response. */
  async call<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    topic: Topic,
    request: Req,
    opts: CallOptions = {},
  ): Promise<Res> {
    if (this.closed) throw new PsrpcError('canceled', 'client is closed');
    if (method.multi) throw new Error(`${method.method} is a multi-response method; use callMulti`);
    await this.ensureService(method.service);
    const timeoutMs = Math.min(Math.max(1, opts.timeoutMs ?? this.timeoutMs), 2 ** 31 - 1);
    const sel = { ...this.defaultSelection(method), ...(opts.selection ?? {}) };
    let raw: Uint8Array;
    try {
      raw = request.toBinary();
    } catch (err) {
      throw new PsrpcError('malformed_request', (err as Error).message);
    }
    const ir = this.buildRequest(method, raw, timeoutMs, opts.metadata);
    const requestId = ir.requestId;
    const signal = opts.signal;
    if (signal?.aborted) throw errRequestCanceled();

    return new Promise<Res>((resolve, reject) => {
      let phase: 'select' | 'wait' | 'done' = method.requireClaim ? 'select' : 'wait';
      let bestServer = '';
      let bestAffinity = 0;
      let claimCount = 0;
      let shorted = false;
      let resErr: PsrpcError | undefined;
      const timers: NodeJS.Timeout[] = [];

      const finish = (err: PsrpcError | undefined, value?: Res): void => {
        if (phase === 'done') return;
        phase = 'done';
        for (const t of timers) clearTimeout(t);
        this.pending.delete(requestId);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as Res);
      };
      const onAbort = (): void => finish(errRequestCanceled());

      const choose = (serverId: string): void => {
        phase = 'wait';
        this.bus
          .publish(
            claimResponseChannel(method.service, method.method, topic),
            'RCLAIM',
            new ClaimResponse({ requestId, serverId }),
          )
          .catch((err: unknown) => finish(new PsrpcError('internal', String(err))));
      };

      const endSelection = (): void => {
        if (phase !== 'select') return;
        if (bestServer !== '') choose(bestServer);
        else if (resErr) finish(resErr);
        else if (claimCount > 0) finish(errNoServersAvailable(claimCount));
        else finish(errNoResponse());
      };

      const onClaim = (c: ClaimRequest): void => {
        if (phase !== 'select') return;
        claimCount++;
        const a = c.affinity;
        if (sel.minimumAffinity > 0 && !(a >= sel.minimumAffinity)) return;
        if (sel.acceptFirstAvailable || (sel.maximumAffinity > 0 && a >= sel.maximumAffinity)) {
          choose(c.serverId);
          return;
        }
        if (a > bestAffinity) {
          bestServer = c.serverId;
          bestAffinity = a;
        }
        if (sel.shortCircuitTimeoutMs > 0 && !shorted) {
          shorted = true;
          timers.push(setTimeout(endSelection, sel.shortCircuitTimeoutMs));
        }
      };

      const onResponse = (r: Response): void => {
        if (phase === 'done') return;
        if (phase === 'select') {
          // During selection only errors count; a success is consumed and thrown away (as Go does).
          if (r.error !== '') resErr = PsrpcError.fromResponse(r.code, r.error, r.errorDetails);
          return;
        }
        if (r.error !== '') {
          finish(PsrpcError.fromResponse(r.code, r.error, r.errorDetails));
          return;
        }
        let value: Res;
        try {
          value = method.responseType.fromBinary(r.rawResponse, { readUnknownFields: false });
        } catch (err) {
          finish(new PsrpcError('malformed_result', (err as Error).message));
          return;
        }
        finish(undefined, value);
      };

      this.pending.set(requestId, { onResponse, cancel: onAbort, ...(method.requireClaim ? { onClaim } : {}) });
      signal?.addEventListener('abort', onAbort, { once: true });

      timers.push(
        setTimeout(() => {
          if (phase === 'select') {
            // The request context ended during selection: same outcome as Go's selectServer, and
            // if a server was selected the wait for its response times out at once.
            if (bestServer !== '') finish(errRequestTimedOut());
            else endSelection();
          } else finish(errRequestTimedOut());
        }, timeoutMs),
      );
      if (method.requireClaim && sel.affinityTimeoutMs > 0) timers.push(setTimeout(endSelection, sel.affinityTimeoutMs));

      this.bus.publish(requestChannel(method.service, method.method, topic), 'REQ', ir).catch((err: unknown) => {
        log.warn('psrpc: publish failed', { method: method.method, error: String(err) });
        finish(new PsrpcError('internal', String(err)));
      });
    });
  }

  /**
   * Calls a multi-response method: publish once (no claim), collect every Response until the
   * timeout (or until `maxResponses` arrived), then return them all.
   */
  async callMulti<Req extends Message<Req>, Res extends Message<Res>>(
    method: MethodInfo<Req, Res>,
    topic: Topic,
    request: Req,
    opts: CallOptions & { maxResponses?: number } = {},
  ): Promise<Array<MultiResult<Res>>> {
    if (this.closed) throw new PsrpcError('canceled', 'client is closed');
    await this.ensureService(method.service);
    const timeoutMs = Math.min(Math.max(1, opts.timeoutMs ?? this.timeoutMs), 2 ** 31 - 1);
    const ir = this.buildRequest({ multi: true }, request.toBinary(), timeoutMs, opts.metadata);
    const results: Array<MultiResult<Res>> = [];
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: PsrpcError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(ir.requestId);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(results);
      };
      const onAbort = (): void => finish(errRequestCanceled());
      const timer = setTimeout(() => finish(), timeoutMs);
      this.pending.set(ir.requestId, {
        cancel: onAbort,
        onResponse: (r) => {
          if (done) return;
          if (r.error !== '') results.push({ serverId: r.serverId, error: PsrpcError.fromResponse(r.code, r.error, r.errorDetails) });
          else {
            try {
              results.push({ serverId: r.serverId, value: method.responseType.fromBinary(r.rawResponse, { readUnknownFields: false }) });
            } catch (err) {
              results.push({ serverId: r.serverId, error: new PsrpcError('malformed_result', (err as Error).message) });
            }
          }
          if (opts.maxResponses !== undefined && results.length >= opts.maxResponses) finish();
        },
      });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.bus.publish(requestChannel(method.service, method.method, topic), 'REQ', ir).catch((err: unknown) => finish(new PsrpcError('internal', String(err))));
    });
  }

  /** Unsubscribes the client's channels; pending calls fail with `canceled`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.pending.values()]) p.cancel();
    this.pending.clear();
    const all = await Promise.allSettled([...this.services.values()]);
    for (const r of all) if (r.status === 'fulfilled') for (const u of r.value) await u();
    this.services.clear();
  }
}
