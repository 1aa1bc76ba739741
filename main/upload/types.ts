/** The one upload interface every storage provider implements (architecture decision 7). */

/** Provider names as the original prints them in `<name> upload failed: <cause>`. */
export type ProviderLabel = 'S3' | 'GCP' | 'Azure' | 'AliOSS' | 'Local';

/** What is uploaded: drives the content type and the metric `type` label. */
export const OUTPUT_TYPES = ['mp4', 'ogg', 'mp3', 'webm', 'ts', 'm3u8', 'jpeg', 'json', 'txt', 'dot', 'other'] as const;
export type OutputType = (typeof OUTPUT_TYPES)[number];

export interface ObjectUpload {
  /** Absolute path of the local file. */
  readonly localPath: string;
  /** Object key / destination path (already including the storage prefix). */
  readonly storagePath: string;
  readonly contentType: string;
  /** Told how many bytes the storage has taken so far (as the provider's SDK reports it). */
  readonly onProgress?: UploadProgressListener;
}

/** Upload progress: bytes stored so far of `totalBytes`. */
export type UploadProgressListener = (sentBytes: number, totalBytes: number) => void;

export interface ObjectResult {
  /** Public location in the original's format, or a 7-day presigned GET URL when asked for. */
  readonly location: string;
  /** Bytes uploaded. */
  readonly size: number;
}

export interface Uploader {
  readonly label: ProviderLabel;
  /** True when a custom endpoint is configured (metric label `custom_endpoint`). */
  readonly customEndpoint: boolean;
  upload(obj: ObjectUpload): Promise<ObjectResult>;
}

/** Knobs that are not part of the storage config: emulator endpoints, sizes, test hooks. */
export interface UploaderOptions {
  /** GCS JSON API endpoint (emulator), e.g. `http://127.0.0.1:4443`. Without it the SDK default (or STORAGE_EMULATOR_HOST) applies. */
  readonly gcpApiEndpoint?: string;
  /** Azure blob service URL (emulator), e.g. `http://127.0.0.1:10000/devstoreaccount1`. Default `https://<account>.blob.core.windows.net`. */
  readonly azureServiceUrl?: string;
  /** Base directory relative storage paths are resolved against for local storage (original: `/`). */
  readonly localBaseDir?: string;
  /** Multipart part size in bytes (S3, Ali OSS) and block size (Azure); default 5 MiB (raised for huge files). */
  readonly partSizeBytes?: number;
  /** Parts in flight per upload; default 2 (memory ≈ partSize × (parallelParts + 1)). */
  readonly parallelParts?: number;
  /** Upper bound on SDK retry delays in ms (tests lower it); defaults per provider. */
  readonly maxRetryDelayMs?: number;
}

/** A provider failure, with the HTTP status when the storage answered one (for metrics/classification). */
export class ProviderError extends Error {
  readonly statusCode: number | undefined;
  constructor(message: string, statusCode?: number) {
    super(message);
    this.name = 'ProviderError';
    this.statusCode = statusCode;
  }
}

/** Part size: the configured one (default 5 MiB), raised so that `size` fits in `maxParts` parts. */
export function partSizeFor(size: number, configured: number | undefined, maxParts: number, min: number): number {
  const base = Math.max(min, configured ?? 5 * 1024 * 1024);
  return Math.max(base, Math.ceil(size / maxParts));
}
