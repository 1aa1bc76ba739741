/**
 * The one error catalog of the project. Every error that can reach a user carries the psrpc code
 * the original egress uses (it becomes the Twirp/HTTP status livekit-server returns), the text the
 * original prints, and who is at fault. Code matches on `code`/`psrpcCode` or `instanceof`, never on
 * message text.
 */

/** psrpc error codes as they appear on the wire (psrpc errors.go). */
export type PsrpcCode =
  | 'canceled'
  | 'malformed_request'
  | 'malformed_result'
  | 'deadline_exceeded'
  | 'unavailable'
  | 'unknown'
  | 'invalid_argument'
  | 'not_found'
  | 'not_acceptable'
  | 'already_exists'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'aborted'
  | 'out_of_range'
  | 'unimplemented'
  | 'internal'
  | 'data_loss'
  | 'unauthenticated';

/** HTTP status for a psrpc code, as psrpc maps them (used for EgressInfo.error_code). */
export function httpStatusOf(code: PsrpcCode): number {
  switch (code) {
    case 'invalid_argument':
    case 'malformed_request':
    case 'out_of_range':
      return 400;
    case 'unauthenticated':
      return 401;
    case 'permission_denied':
      return 403;
    case 'not_found':
      return 404;
    case 'not_acceptable':
      return 406;
    case 'already_exists':
    case 'aborted':
      return 409;
    case 'failed_precondition':
      return 412;
    case 'resource_exhausted':
      return 429;
    case 'unimplemented':
      return 501;
    case 'unavailable':
    case 'deadline_exceeded':
      return 503;
    case 'canceled':
      return 408;
    case 'unknown':
      return 0;
    default:
      return 500;
  }
}

/** Stable machine-readable codes for our own error classes. */
export type EgressErrorCode =
  | 'E_INVALID_INPUT'
  | 'E_CONFIG'
  | 'E_PAGE_LOAD'
  | 'E_TEMPLATE'
  | 'E_CHROME'
  | 'E_GST_LAUNCH'
  | 'E_GST_DIED'
  | 'E_PIPELINE_FROZEN'
  | 'E_CAPTURE'
  | 'E_UPLOAD'
  | 'E_INVALID_STATE'
  | 'E_NOT_FOUND'
  | 'E_ALREADY_EXISTS'
  | 'E_RESOURCE'
  | 'E_SHUTTING_DOWN'
  | 'E_ROOM'
  | 'E_UNSUPPORTED'
  | 'E_STREAM'
  | 'E_INTERNAL';

export interface EgressErrorOptions {
  readonly cause?: unknown;
  /** True when the user's destination (bucket, stream URL, page) is at fault, not us. */
  readonly destination?: boolean;
  /** True when the same operation may succeed if tried again. */
  readonly retryable?: boolean;
}

export class EgressError extends Error {
  readonly code: EgressErrorCode;
  readonly psrpcCode: PsrpcCode;
  readonly destination: boolean;
  readonly retryable: boolean;

  constructor(code: EgressErrorCode, psrpcCode: PsrpcCode, message: string, opts: EgressErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EgressError';
    this.code = code;
    this.psrpcCode = psrpcCode;
    this.destination = opts.destination ?? false;
    this.retryable = opts.retryable ?? false;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /** HTTP-style status for EgressInfo.error_code. */
  get httpStatus(): number {
    return httpStatusOf(this.psrpcCode);
  }
}

/** `request has missing or invalid field: <field>` (400), the original's validation error. */
export function errInvalidField(field: string): EgressError {
  return new EgressError('E_INVALID_INPUT', 'invalid_argument', `request has missing or invalid field: ${field}`);
}

/** A validation error whose whole text is given (e.g. `format audio/mpeg incompatible with codec video/h264`). */
export function errInvalidInput(message: string): EgressError {
  return new EgressError('E_INVALID_INPUT', 'invalid_argument', message);
}

export function errPageLoad(detail: string, opts: EgressErrorOptions = {}): EgressError {
  return new EgressError('E_PAGE_LOAD', 'invalid_argument', `page load error: ${detail}`, { destination: true, ...opts });
}

export function errTemplate(text: string): EgressError {
  return new EgressError('E_TEMPLATE', 'invalid_argument', `template error: ${text}`, { destination: true });
}

export function errChrome(detail: string, cause?: unknown): EgressError {
  return new EgressError('E_CHROME', 'internal', `chrome failed: ${detail}`, { cause });
}

export function errPipelineFrozen(): EgressError {
  return new EgressError('E_PIPELINE_FROZEN', 'internal', 'pipeline frozen');
}

export function errGstDied(detail: string): EgressError {
  return new EgressError('E_GST_DIED', 'internal', `pipeline failed: ${detail}`);
}

export function errConfig(message: string, cause?: unknown): EgressError {
  return new EgressError('E_CONFIG', 'invalid_argument', message, { cause });
}

export function errNotEnoughCpu(): EgressError {
  return new EgressError('E_RESOURCE', 'unavailable', 'not enough CPU');
}

export function errShuttingDown(): EgressError {
  return new EgressError('E_SHUTTING_DOWN', 'unavailable', 'server is shutting down');
}

export function errAlreadyExists(): EgressError {
  return new EgressError('E_ALREADY_EXISTS', 'already_exists', 'egress already exists');
}

export function errNotFound(message: string): EgressError {
  return new EgressError('E_NOT_FOUND', 'not_found', message);
}

/** The room connection of a room egress was lost after the recording started (503, as the original). */
export function errRoomConnectionFailed(): EgressError {
  return new EgressError('E_ROOM', 'unavailable', 'recording ended early: connection to room failed');
}

/** Another participant joined with the recorder's identity (= egress id): the egress exits silently. */
export function errDuplicateIdentity(): EgressError {
  return new EgressError('E_ROOM', 'aborted', 'recorder replaced: another participant joined with the egress identity');
}

/**
 * A valid request for something this build cannot run yet: refused up front, never half done.
 * InvalidArgument (400) like the original's own `… is not yet supported` errors; livekit-server
 * v1.13.5 passes psrpc's Unimplemented on as an `unknown` Twirp error, which says nothing.
 */
export function errUnsupported(what: string): EgressError {
  return new EgressError('E_UNSUPPORTED', 'invalid_argument', `${what} is not yet supported by this egress`);
}

/** Wraps anything thrown into an EgressError, keeping an EgressError as it is. */
export function toEgressError(err: unknown): EgressError {
  if (err instanceof EgressError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EgressError('E_INTERNAL', 'internal', message, { cause: err });
}
