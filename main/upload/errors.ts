import { EgressError } from '../contracts/errors.js';

/**
 * An upload that failed everywhere. `message` is the original's text:
 * `<S3|GCP|Azure|AliOSS|Local> upload failed: <cause>` (no backup) or
 * `primary: <err>\nbackup: <err>` (both failed), psrpc invalid_argument (400) like the original.
 * `localPath` is the file that was kept on disk because it could not be uploaded anywhere.
 */
export class UploadError extends EgressError {
  readonly localPath: string | undefined;
  readonly storagePath: string | undefined;
  readonly statusCode: number | undefined;

  constructor(message: string, opts: { localPath?: string; storagePath?: string; statusCode?: number; destination?: boolean; psrpc?: 'invalid_argument' | 'internal' } = {}) {
    super('E_UPLOAD', opts.psrpc ?? 'invalid_argument', message, { destination: opts.destination ?? false });
    this.name = 'UploadError';
    this.localPath = opts.localPath;
    this.storagePath = opts.storagePath;
    this.statusCode = opts.statusCode;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** `<segment> upload failed: segment upload job queue is full`. */
export function errSegmentQueueFull(segment: string, localPath: string): UploadError {
  return new UploadError(`${segment} upload failed: segment upload job queue is full`, { localPath, storagePath: segment, psrpc: 'internal' });
}

/** `image upload queue full (<n> pending): storage cannot keep up`. */
export function errImageQueueFull(pending: number, localPath: string, storagePath: string): UploadError {
  return new UploadError(`image upload queue full (${pending} pending): storage cannot keep up`, { localPath, storagePath, psrpc: 'internal' });
}
