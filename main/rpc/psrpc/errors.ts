/**
 * psrpc errors: the code strings of psrpc v0.7.2 `errors.go` and the rules for putting an error
 * into / reading it from an `internal.Response`.
 */
import type { Any } from '@bufbuild/protobuf';
import { EgressError } from '../../contracts/errors.js';

export const PSRPC_ERROR_CODES = [
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
  'unprocessable_entity',
  'upstream_server_error',
  'upstream_client_error',
] as const;

/** Every psrpc error code string (a superset of contracts' PsrpcCode). */
export type PsrpcErrorCode = (typeof PSRPC_ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(PSRPC_ERROR_CODES);

export function isPsrpcErrorCode(s: string): s is PsrpcErrorCode {
  return CODE_SET.has(s);
}

/** An error with a psrpc code, as received from or sent to a peer. */
export class PsrpcError extends Error {
  readonly code: PsrpcErrorCode;
  /** Raw `error_details` from the wire (kept opaque). */
  readonly details: readonly Any[];

  constructor(code: PsrpcErrorCode, message: string, details: readonly Any[] = [], options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PsrpcError';
    this.code = code;
    this.details = details;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /** Go's `NewErrorFromResponse`: an empty (or unknown) code reads as `unknown`. */
  static fromResponse(code: string, message: string, details: readonly Any[] = []): PsrpcError {
    return new PsrpcError(isPsrpcErrorCode(code) ? code : 'unknown', message, details);
  }
}

/** `no response from servers` (unavailable): no claim / response arrived. */
export const errNoResponse = (): PsrpcError => new PsrpcError('unavailable', 'no response from servers');
/** `request timed out` (deadline_exceeded). */
export const errRequestTimedOut = (): PsrpcError => new PsrpcError('deadline_exceeded', 'request timed out');
/** `request canceled` (canceled). */
export const errRequestCanceled = (): PsrpcError => new PsrpcError('canceled', 'request canceled');
/** `no servers available (received N responses)` (unavailable). */
export const errNoServersAvailable = (n: number): PsrpcError =>
  new PsrpcError('unavailable', `no servers available (received ${n} responses)`);

/** The `error`/`code` pair a server puts into a Response for a thrown value. */
export interface WireError {
  error: string;
  code: PsrpcErrorCode;
  details: readonly Any[];
}

/**
 * Encodes any thrown value for the wire: PsrpcError and EgressError keep their code; anything else
 * is `unknown` (as Go does for plain errors). The text is never empty, because an empty `error`
 * would be read as success.
 */
export function toWireError(err: unknown): WireError {
  let code: PsrpcErrorCode = 'unknown';
  let message: string;
  let details: readonly Any[] = [];
  if (err instanceof PsrpcError) {
    code = err.code;
    message = err.message;
    details = err.details;
  } else if (err instanceof EgressError) {
    code = err.psrpcCode;
    message = err.message;
  } else if (err instanceof Error) {
    message = err.message;
  } else {
    message = String(err);
  }
  if (message === '') message = code;
  return { error: message, code, details };
}
