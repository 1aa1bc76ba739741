/**
 * psrpc over Redis, in TypeScript (wire-compatible with livekit/psrpc v0.7.x as used by
 * livekit-server v1.13.5). Knows nothing about egress; see `../services.ts` for the egress
 * method table and `../messages.ts` for the rpc.* messages.
 *
 * Typical use:
 *
 *   const bus = await RedisBus.connect({ redis: { host: '127.0.0.1', port: 6379 } });
 *
 *   // serve
 *   const server = new PsrpcServer(bus);                    // id SRV_xxxxxxxxxxxx
 *   const reg = await server.register(EgressInternal.StartEgress, clusterId,
 *     async (req, ctx) => info,                             // throw PsrpcError/EgressError to fail
 *     { affinity: (req) => 1 });                            // < 0 = stay silent
 *   await reg.close();                                      // stop serving this method+topic
 *
 *   // call
 *   const client = new PsrpcClient(bus);                    // id CLI_xxxxxxxxxxxx
 *   await client.ready('IOInfo');                           // subscribe RES/CLAIM early
 *   await client.call(IOInfo.UpdateEgress, undefined, info, { timeoutMs: 30_000 });
 *   const all = await client.callMulti(EgressInternal.ListActiveEgress, '', new ListActiveEgressRequest());
 *
 *   await server.close(); await client.close(); await bus.close();
 *
 * API summary
 * - `RedisBus.connect(opts: RedisBusOptions): Promise<RedisBus>`; `bus.subscribe(channel, kind, fn)`,
 *   `bus.publish(channel, kind, msg)` (refuses a message kind the channel does not carry),
 *   `bus.queueLock(payload)`, `bus.stats`, `bus.close()`.
 * - `new PsrpcServer(bus, opts?)`: `register(method, topic, handler, { affinity }?) → Registration`,
 *   `deregister(method, topic)`, `isRegistered(method, topic)`, `activeRequests`, `idle()`, `stats`,
 *   `close(force?)`. Handlers get `(request, RequestContext)` with an AbortSignal firing at expiry.
 *   Unary + claim: claim with the affinity, wait for the ClaimResponse naming us, then answer
 *   exactly once. Multi: answer without a claim. Queue methods take the SET NX lock. Expired,
 *   undecodable or mistyped messages are counted in `bus.stats.dropped`, logged (rate-limited), dropped.
 * - `new PsrpcClient(bus, opts?)`: `call(method, topic, req, CallOptions?) → Promise<Res>`,
 *   `callMulti(method, topic, req, opts?) → Promise<MultiResult<Res>[]>`, `ready(...services)`, `close()`.
 *   Failures are `PsrpcError` with `.code` (`unavailable` "no response from servers",
 *   `deadline_exceeded` "request timed out", `canceled`, or the server's code and message).
 * - `PsrpcError`, `toWireError(err)` (PsrpcError/EgressError keep their code, others → `unknown`).
 * - Channel helpers (`requestChannel`, `claimResponseChannel`, `claimRequestChannel`,
 *   `responseChannel`, `formatChannel`, `sanitizeChannelPart`), envelope helpers
 *   (`encodeEnvelope`, `decodeEnvelope`), the internal.* message types, and id helpers.
 */
export { RedisBus, queueLockKey, QUEUE_LOCK_TTL_SECONDS, DEFAULT_MAX_PAYLOAD_BYTES } from './bus.js';
export type { RedisBusOptions, BusHandler, BusStats } from './bus.js';
export { PsrpcServer } from './server.js';
export type { AffinityFunc, Handler, PsrpcServerOptions, RegisterOptions, Registration, RequestContext, ServerStats } from './server.js';
export { PsrpcClient, DEFAULT_TIMEOUT_MS, DEFAULT_SELECTION_TIMEOUT_MS, DEFAULT_SHORT_CIRCUIT_MS } from './client.js';
export type { CallOptions, MultiResult, PsrpcClientOptions, SelectionOptions } from './client.js';
export {
  PsrpcError,
  PSRPC_ERROR_CODES,
  isPsrpcErrorCode,
  toWireError,
  errNoResponse,
  errNoServersAvailable,
  errRequestCanceled,
  errRequestTimedOut,
} from './errors.js';
export type { PsrpcErrorCode, WireError } from './errors.js';
export {
  CHANNEL_SEPARATOR,
  channelSuffix,
  claimRequestChannel,
  claimResponseChannel,
  formatChannel,
  requestChannel,
  responseChannel,
  sanitizeChannelPart,
  streamServerChannel,
} from './channels.js';
export type { ChannelPart, Topic } from './channels.js';
export {
  ClaimRequest,
  ClaimResponse,
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_TYPES,
  EnvelopeError,
  Msg,
  nowNs,
  Request,
  Response,
  Stream,
  StreamAck,
  StreamClose,
  StreamMessage,
  StreamOpen,
  TYPE_URL_PREFIX,
  typeUrlOf,
} from './internal.js';
export type { EnvelopeKind, EnvelopeTypes } from './internal.js';
export { isChannelSafeId, newClientId, newId, newRequestId, newServerId } from './ids.js';
export { defineMethod } from './types.js';
export type { MethodInfo } from './types.js';
