/**
 * The worker ↔ handler IPC protocol (Node `child_process.fork` channel, JSON serialization).
 * Every message is validated with zod on receipt, on both sides: a handler is a separate
 * process that may be buggy or compromised by a hostile page, so nothing it sends is trusted.
 *
 * Protobuf payloads (rpc.StartEgressRequest, livekit.EgressInfo) travel as base64 of their
 * binary encoding, so the handler rebuilds exactly what the worker validated.
 */
import { z } from 'zod';
import { EgressInfo } from '@livekit/protocol';
import { OUTPUT_TYPES } from '../upload/types.js';
import { UPLOAD_STATUSES } from '../upload/metrics.js';

/**
 * How long a forked handler has to say it is ready (Node start, imports, the egress built). The
 * original allows 10 s; ours took 0.65 s on a quiet machine but over 10 s twice on a saturated one
 * (four publishers encoding beside a busy core), and failing a start there fails the user's request.
 * livekit-server's own StartEgress deadline (10 s, retried at 20 s and 40 s) is joined, not raced:
 * its retries are answered with the first attempt's result.
 */
export const HANDLER_READY_TIMEOUT_MS = 30_000;

/** Upper bounds that keep a misbehaving peer from making us allocate without limit. */
const MAX_B64 = 8 * 1024 * 1024;
const b64 = z.string().max(MAX_B64).regex(/^[A-Za-z0-9+/]*={0,2}$/);

/** Why the worker asks a handler to stop; each maps to an `End reason:`. */
export const stopReasonSchema = z.enum(['StopEgress API', 'Session limit reached', 'CPU exhausted', 'Process killed']);
export type StopReason = z.infer<typeof stopReasonSchema>;

export const psrpcCodeSchema = z.enum([
  'canceled',
  'malformed_request',
  'malformed_result',
  'deadline_exceeded',
  'unavailable',
  'unknown',
  'invalid_argument',
  'not_found',
  'not_acceptable',
  'already_exists',
  'permission_denied',
  'resource_exhausted',
  'failed_precondition',
  'aborted',
  'out_of_range',
  'unimplemented',
  'internal',
  'data_loss',
  'unauthenticated',
]);

export const workerToHandlerSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('start'),
      /** base64 rpc.StartEgressRequest */
      request: b64,
      /** The acceptance instant the worker used for its plan and STARTING info (ms). */
      nowMs: z.number().int().nonnegative(),
      /** The service config as YAML (re-parsed and re-validated by the handler). */
      config: z.string().max(4 * 1024 * 1024),
    })
    .strict(),
  z.object({ type: z.literal('stop'), seq: z.number().int().nonnegative(), reason: stopReasonSchema }).strict(),
  /** UpdateStream: URLs to add to and remove from the stream output. */
  z
    .object({
      type: z.literal('updateStream'),
      seq: z.number().int().nonnegative(),
      add: z.array(z.string().max(4096)).max(100),
      remove: z.array(z.string().max(4096)).max(100),
    })
    .strict(),
  /** Ends the egress and reports it FAILED with this error (SIGINT shutdown, CPU/OOM kill). */
  z.object({ type: z.literal('kill'), error: z.string().max(1000), code: z.number().int().min(0).max(999) }).strict(),
  /**
   * To a pool handler (forked before any request, see browser-pool.ts): launch a browser and wait for
   * a `start`. The config is the same YAML `start` carries.
   */
  z.object({ type: z.literal('prewarm'), config: z.string().max(4 * 1024 * 1024) }).strict(),
]);
export type WorkerToHandler = z.infer<typeof workerToHandlerSchema>;

export const handlerToWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), egressId: z.string().max(256) }).strict(),
  /** A pool handler's browser is up and idle (its pid, so the worker can reap it should the handler die). */
  z.object({ type: z.literal('warm'), browserPid: z.number().int().positive() }).strict(),
  /** A status change (every controller update, already rewritten for limits/kills). */
  z.object({ type: z.literal('update'), info: b64 }).strict(),
  /** The answer to an `updateStream` with the same seq: the info after it, or its error. */
  z
    .object({
      type: z.literal('streamUpdated'),
      seq: z.number().int().nonnegative(),
      info: b64.optional(),
      error: z.object({ message: z.string().max(8000), code: psrpcCodeSchema }).strict().optional(),
    })
    .strict(),
  /** The answer to a `stop` with the same seq: the info right after the stop request. */
  z.object({ type: z.literal('stopped'), seq: z.number().int().nonnegative(), info: b64 }).strict(),
  /**
   * The final info; the handler exits after this. `silent`: the recorder's identity was taken by
   * another participant — the worker sends no further status.
   */
  z.object({ type: z.literal('finished'), info: b64, silent: z.boolean().optional() }).strict(),
  /** One upload the handler's metrics counted; the worker counts it on its /metrics. */
  z
    .object({
      type: z.literal('uploadMetric'),
      observation: z.discriminatedUnion('kind', [
        z
          .object({
            kind: z.literal('upload'),
            outputType: z.enum(OUTPUT_TYPES),
            status: z.enum(UPLOAD_STATUSES),
            customEndpoint: z.boolean(),
            elapsedMs: z.number().finite().nonnegative().max(7 * 24 * 3600 * 1000),
          })
          .strict(),
        z.object({ kind: z.literal('backupWrite'), outputType: z.enum(OUTPUT_TYPES) }).strict(),
      ]),
    })
    .strict(),
]);
export type HandlerToWorker = z.infer<typeof handlerToWorkerSchema>;

export function encodeInfo(info: EgressInfo): string {
  return Buffer.from(info.toBinary()).toString('base64');
}

/** Decodes a base64 EgressInfo; throws on garbage. */
export function decodeInfo(s: string): EgressInfo {
  return EgressInfo.fromBinary(Buffer.from(s, 'base64'));
}

/** Parses an IPC message; returns null (never throws) for anything not matching the schema. */
export function parseWorkerMessage(m: unknown): WorkerToHandler | null {
  const r = workerToHandlerSchema.safeParse(m);
  return r.success ? r.data : null;
}

export function parseHandlerMessage(m: unknown): HandlerToWorker | null {
  const r = handlerToWorkerSchema.safeParse(m);
  return r.success ? r.data : null;
}
