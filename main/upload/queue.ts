import type { EgressError } from '../contracts/errors.js';
import { errImageQueueFull, errSegmentQueueFull, UploadError } from './errors.js';
import type { UploadOutcome, UploadSink } from './manager.js';
import type { OutputType } from './types.js';

/** Segment queue capacity: max_upload_queue (minutes) × 60 / segment_duration. */
export function segmentQueueCapacity(maxUploadQueueMin: number, segmentDurationS: number): number {
  return Math.max(1, Math.floor((maxUploadQueueMin * 60) / Math.max(1, segmentDurationS)));
}

/** Image queue capacity: max(max_upload_queue × 60 / capture_interval, 4). */
export function imageQueueCapacity(maxUploadQueueMin: number, captureIntervalS: number): number {
  return Math.max(Math.floor((maxUploadQueueMin * 60) / Math.max(1, captureIntervalS)), 4);
}

export interface QueueItem {
  readonly seq: number;
  readonly localPath: string;
  readonly storageFilepath: string;
  readonly outputType: OutputType;
}

export interface UploadQueueOptions {
  readonly kind: 'segment' | 'image';
  /** Waiting jobs tolerated (not counting uploads in flight); see the *QueueCapacity helpers. */
  readonly capacity: number;
  /** Uploads in flight at once; default 2. */
  readonly concurrency?: number;
  /** Delete each local file once stored (default true, like the original). */
  readonly deleteAfterUpload?: boolean;
  /** Called for each uploaded item strictly in enqueue order (e.g. append the playlist entry). */
  readonly onUploaded?: (item: QueueItem, outcome: UploadOutcome) => void | Promise<void>;
  /** Called once, on the first failure (upload failure or full queue); the egress should fail. */
  readonly onError?: (err: EgressError) => void;
}

interface Job {
  readonly item: QueueItem;
  result?: { ok: true; outcome: UploadOutcome } | { ok: false; err: UploadError };
}

/**
 * Uploads files as they are produced: FIFO start order, bounded parallelism, completion callbacks
 * in order. A full queue or an upload failure is an error (never a silent drop); after a failure
 * the queue refuses more files and the not-uploaded ones stay on disk (reported by the manager).
 */
export class UploadQueue {
  private readonly waiting: Job[] = [];
  private readonly inOrder: Job[] = [];
  private inFlight = 0;
  private seq = 0;
  private failure: EgressError | null = null;
  private idleResolvers: (() => void)[] = [];
  private delivering = false;
  private readonly concurrency: number;
  private uploadedCount = 0;
  private uploadedBytes = 0;

  constructor(
    private readonly sink: UploadSink,
    private readonly opts: UploadQueueOptions,
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
  }

  /** Jobs waiting to start (what the capacity bounds). */
  get pending(): number {
    return this.waiting.length;
  }
  get active(): number {
    return this.inFlight;
  }
  get error(): EgressError | null {
    return this.failure;
  }
  get uploaded(): { count: number; bytes: number } {
    return { count: this.uploadedCount, bytes: this.uploadedBytes };
  }

  /**
   * Adds a finished file. Throws (and fails the queue) when the queue is full: segments
   * `<segment> upload failed: segment upload job queue is full`, images
   * `image upload queue full (<n> pending): storage cannot keep up`; throws the first failure when
   * the queue already failed.
   */
  enqueue(localPath: string, storageFilepath: string, outputType: OutputType): void {
    if (this.failure) {
      this.sink.manager._keep(localPath);
      throw this.failure;
    }
    if (this.waiting.length >= this.opts.capacity) {
      const err =
        this.opts.kind === 'segment'
          ? errSegmentQueueFull(storageFilepath, localPath)
          : errImageQueueFull(this.waiting.length, localPath, storageFilepath);
      this.sink.manager._keep(localPath);
      this.fail(err);
      throw err;
    }
    const job: Job = { item: { seq: this.seq++, localPath, storageFilepath, outputType } };
    this.waiting.push(job);
    this.inOrder.push(job);
    this.pump();
  }

  /** Resolves when everything enqueued is uploaded and delivered; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.waiting.length > 0 || this.inFlight > 0 || this.delivering || (this.inOrder.length > 0 && !this.failure)) {
      await new Promise<void>((resolve) => this.idleResolvers.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  private fail(err: EgressError): void {
    if (this.failure) return;
    this.failure = err;
    // Files that will never be uploaded stay on disk: report them.
    for (const j of this.waiting) this.sink.manager._keep(j.item.localPath);
    this.waiting.length = 0;
    try {
      this.opts.onError?.(err);
    } finally {
      this.wake();
    }
  }

  private wake(): void {
    const r = this.idleResolvers;
    this.idleResolvers = [];
    for (const f of r) f();
  }

  private pump(): void {
    while (!this.failure && this.inFlight < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift() as Job;
      this.inFlight++;
      this.sink
        .upload(job.item.localPath, job.item.storageFilepath, job.item.outputType, { deleteAfterUpload: this.opts.deleteAfterUpload ?? true })
        .then(
          (outcome) => {
            job.result = { ok: true, outcome };
          },
          (err: unknown) => {
            job.result = { ok: false, err: err instanceof UploadError ? err : new UploadError(String(err)) };
          },
        )
        .finally(() => {
          this.inFlight--;
          void this.deliver();
          this.pump();
          this.wake();
        });
    }
  }

  private async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.inOrder.length > 0 && this.inOrder[0]?.result) {
        const job = this.inOrder.shift() as Job;
        const res = job.result;
        if (!res) break;
        if (!res.ok) {
          this.fail(res.err);
          continue;
        }
        this.uploadedCount++;
        this.uploadedBytes += res.outcome.size;
        if (!this.failure) await this.opts.onUploaded?.(job.item, res.outcome);
      }
      if (this.failure) this.inOrder.length = 0;
    } catch (err) {
      this.fail(err instanceof UploadError ? err : new UploadError(err instanceof Error ? err.message : String(err)));
    } finally {
      this.delivering = false;
      this.wake();
    }
  }
}
