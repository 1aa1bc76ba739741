import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { StoragePlan } from '../contracts/pipeline.js';
import { logger } from '../log.js';
import { contentTypeOf } from './content-type.js';
import { UploadError } from './errors.js';
import { createUploader } from './factory.js';
import { statusOf, uploadMetrics, type UploadMetrics } from './metrics.js';
import { UploadQueue, type UploadQueueOptions } from './queue.js';
import { secretsOf } from './resolve.js';
import { ProviderError, type OutputType, type ProviderLabel, type Uploader, type UploaderOptions, type UploadProgressListener } from './types.js';

const log = logger('upload');

export interface UploadManagerOptions {
  readonly egressId: string;
  /** The sink's resolved storage (resolveStoragePlan). */
  readonly primary: StoragePlan;
  /** Config `backup` (resolveBackupPlan), null/undefined = none. */
  readonly backup?: StoragePlan | null;
  /** Registry to register upload metrics on; none = no metrics. */
  readonly registry?: Registry;
  readonly uploaderOptions?: UploaderOptions;
  readonly backupUploaderOptions?: UploaderOptions;
}

export interface UploadOutcome {
  readonly location: string;
  readonly size: number;
  /** Storage path actually used (prefix applied). */
  readonly storagePath: string;
  /** True when the object went to the backup storage. */
  readonly backup: boolean;
}

export interface UploadFileOptions {
  /** Delete the local file once it is stored somewhere (segments, images). Default false. */
  readonly deleteAfterUpload?: boolean;
  /** Overrides the content type derived from outputType. */
  readonly contentType?: string;
  /** Progress of each attempt (a switch to the backup store starts again from 0). */
  readonly onProgress?: UploadProgressListener;
}

interface Store {
  readonly label: ProviderLabel;
  readonly get: () => Promise<Uploader>;
}

const LABEL_OF: Record<string, ProviderLabel> = { s3: 'S3', gcp: 'GCP', azure: 'Azure', alioss: 'AliOSS', local: 'Local' };

function labelOf(plan: StoragePlan): ProviderLabel {
  return LABEL_OF[plan.target?.kind ?? 'local'] ?? 'Local';
}

function lazyStore(plan: StoragePlan, opts: UploaderOptions | undefined): Store {
  let p: Promise<Uploader> | null = null;
  return {
    label: labelOf(plan),
    get: () => {
      p ??= createUploader(plan, opts);
      return p;
    },
  };
}

/**
 * Uploads of one egress: a primary store and an optional backup store. Each output sink
 * (file, segments, images, …) gets an UploadSink; after the first primary failure of a sink, that
 * sink's later uploads go straight to backup. A local file is only deleted after it was stored
 * somewhere; files that could not be stored anywhere stay on disk and are listed in `leftOnDisk`.
 */
export class UploadManager {
  readonly egressId: string;
  readonly prefix: string;
  private readonly primary: Store;
  private readonly backupStore: Store | null;
  private readonly metrics: UploadMetrics | null;
  private readonly secrets: string[];
  private readonly sinks = new Map<string, UploadSink>();
  private readonly kept: string[] = [];
  private backupUsed = false;

  constructor(opts: UploadManagerOptions) {
    this.egressId = opts.egressId;
    this.prefix = opts.primary.prefix;
    this.primary = lazyStore(opts.primary, opts.uploaderOptions);
    this.backupStore = opts.backup ? lazyStore(opts.backup, opts.backupUploaderOptions ?? opts.uploaderOptions) : null;
    this.metrics = opts.registry ? uploadMetrics(opts.registry) : null;
    this.secrets = [...secretsOf(opts.primary.target), ...secretsOf(opts.backup?.target ?? null)].sort((a, b) => b.length - a.length);
  }

  get backupConfigured(): boolean {
    return this.backupStore !== null;
  }

  /** EgressInfo.backup_storage_used. */
  get backupStorageUsed(): boolean {
    return this.backupUsed;
  }

  /** Local files that could not be uploaded anywhere (still on disk). */
  get leftOnDisk(): readonly string[] {
    return [...this.kept];
  }

  /** `path.Join(storage.prefix, storageFilepath)`. */
  storagePath(storageFilepath: string): string {
    return path.posix.join(this.prefix, storageFilepath);
  }

  /** The sink called `name` (one per output); the same name returns the same sink. */
  sink(name: string): UploadSink {
    let s = this.sinks.get(name);
    if (!s) {
      s = new UploadSink(name, this);
      this.sinks.set(name, s);
    }
    return s;
  }

  /** Removes every secret of both stores from a text (errors from SDKs may echo request details). */
  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('{redacted}');
    return out;
  }

  /** @internal used by UploadSink */
  async _attempt(store: Store, localPath: string, storagePath: string, outputType: OutputType, contentType: string, onProgress?: UploadProgressListener): Promise<{ location: string; size: number; customEndpoint: boolean }> {
    const started = Date.now();
    let customEndpoint = false;
    try {
      const up = await store.get();
      customEndpoint = up.customEndpoint;
      const res = await up.upload({ localPath, storagePath, contentType, ...(onProgress ? { onProgress } : {}) });
      this.metrics?.observeUpload(outputType, 'success', customEndpoint, Date.now() - started);
      return { ...res, customEndpoint };
    } catch (err) {
      this.metrics?.observeUpload(outputType, statusOf(err), customEndpoint, Date.now() - started);
      const cause = err instanceof Error ? err.message : String(err);
      const statusCode = err instanceof ProviderError ? err.statusCode : undefined;
      throw new UploadError(this.scrub(`${store.label} upload failed: ${cause}`), {
        localPath,
        storagePath,
        ...(statusCode !== undefined ? { statusCode } : {}),
        destination: statusCode !== undefined && statusCode >= 400 && statusCode < 500,
      });
    }
  }

  /** @internal */
  _primary(): Store {
    return this.primary;
  }
  /** @internal */
  _backup(): Store | null {
    return this.backupStore;
  }
  /** @internal */
  _markBackupUsed(outputType: OutputType): void {
    this.backupUsed = true;
    this.metrics?.backupWrite(outputType);
  }
  /** @internal */
  _keep(localPath: string): void {
    if (!this.kept.includes(localPath)) this.kept.push(localPath);
  }
}

export class UploadSink {
  private primaryFailed = false;

  constructor(
    readonly name: string,
    private readonly mgr: UploadManager,
  ) {}

  /** True once the primary store failed for this sink (later uploads go to backup). */
  get primaryHasFailed(): boolean {
    return this.primaryFailed;
  }

  get manager(): UploadManager {
    return this.mgr;
  }

  /**
   * Uploads one finished file to `<prefix>/<storageFilepath>`. Resolves with the location; rejects
   * with UploadError (original text, `localPath` = the file kept on disk).
   */
  async upload(localPath: string, storageFilepath: string, outputType: OutputType, opts: UploadFileOptions = {}): Promise<UploadOutcome> {
    const storagePath = this.mgr.storagePath(storageFilepath);
    const contentType = opts.contentType ?? contentTypeOf(outputType);
    let primaryErr: UploadError | null = null;
    if (!this.primaryFailed) {
      try {
        const r = await this.mgr._attempt(this.mgr._primary(), localPath, storagePath, outputType, contentType, opts.onProgress);
        await this.done(localPath, opts);
        return { location: r.location, size: r.size, storagePath, backup: false };
      } catch (err) {
        primaryErr = err as UploadError;
        const backup = this.mgr._backup();
        if (backup) {
          this.primaryFailed = true;
          log.warn(`primary storage failed for ${this.name}, switching to backup: ${primaryErr.message}`);
        }
      }
    }
    const backup = this.mgr._backup();
    if (!backup) {
      this.mgr._keep(localPath);
      const e = primaryErr as UploadError;
      if (e.destination) log.warn(e.message);
      else log.error(e.message);
      throw e;
    }
    try {
      const r = await this.mgr._attempt(backup, localPath, storagePath, outputType, contentType, opts.onProgress);
      this.mgr._markBackupUsed(outputType);
      await this.done(localPath, opts);
      return { location: r.location, size: r.size, storagePath, backup: true };
    } catch (err) {
      const backupErr = err as UploadError;
      this.mgr._keep(localPath);
      const e = primaryErr
        ? new UploadError(`primary: ${primaryErr.message}\nbackup: ${backupErr.message}`, {
            localPath,
            storagePath,
            destination: primaryErr.destination && backupErr.destination,
          })
        : backupErr;
      log.error(`upload of ${storagePath} failed, file kept at ${localPath}: ${e.message}`);
      throw e;
    }
  }

  /** A queue for files produced while recording (HLS segments, thumbnails). */
  createQueue(opts: UploadQueueOptions): UploadQueue {
    return new UploadQueue(this, opts);
  }

  private async done(localPath: string, opts: UploadFileOptions): Promise<void> {
    if (!opts.deleteAfterUpload) return;
    try {
      await unlink(localPath);
    } catch (err) {
      log.warn(`could not delete ${localPath} after upload: ${(err as Error).message}`);
    }
  }
}
