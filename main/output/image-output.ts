import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { ImagesInfo } from '@livekit/protocol';
import type { ImageOutputPlan } from '../contracts/pipeline.js';
import type { EgressError } from '../contracts/errors.js';
import { imageFilename } from '../request/filename.js';
import { imageQueueCapacity, type UploadQueue, type UploadSink } from '../upload/index.js';
import type { ImageMessage } from '../../gst/output-pipeline.js';

export interface ImageOutputOptions {
  /** Config max_upload_queue (minutes): bounds the images waiting for upload. */
  readonly maxUploadQueueMin: number;
  /** The first failure (upload failed, queue full): the egress fails. */
  readonly onError: (err: EgressError) => void;
}

/**
 * One image output: multifilesink writes a JPEG per capture interval and reports
 * it with its running time; each is stored under its INDEX / TIMESTAMP / NONE_OVERWRITE name and
 * uploaded at once (NONE_OVERWRITE: every capture replaces the stored `<prefix>.jpeg`).
 */
export class ImageOutput {
  readonly localDir: string;
  readonly #queue: UploadQueue;
  #startUs: number | null = null;
  #endNs: bigint | null = null;
  #count = 0;
  #firstAt: Date | null = null;
  #lastAt: Date | null = null;
  readonly #takenAt = new Map<string, Date>();
  readonly #stored: { filename: string; timestamp: Date; location: string }[] = [];

  constructor(
    readonly plan: ImageOutputPlan,
    sink: UploadSink,
    opts: ImageOutputOptions,
  ) {
    this.localDir = plan.localDir;
    this.#queue = sink.createQueue({
      kind: 'image',
      capacity: imageQueueCapacity(opts.maxUploadQueueMin, plan.captureIntervalS),
      // One upload at a time keeps NONE_OVERWRITE's stored image the newest one.
      concurrency: plan.suffix === 'none_overwrite' ? 1 : 2,
      onError: opts.onError,
      onUploaded: (item, outcome) => {
        this.#stored.push({ filename: outcome.storagePath, timestamp: this.#takenAt.get(item.localPath) ?? new Date(), location: outcome.location });
        this.#takenAt.delete(item.localPath);
      },
    });
  }

  /** multifilesink element name in the pipeline. */
  get sinkName(): string {
    return this.plan.id;
  }

  get locationPattern(): string {
    return path.join(this.localDir, 'img_%05d.jpeg');
  }

  async prepare(): Promise<void> {
    await mkdir(this.localDir, { recursive: true });
  }

  /** Wall clock (µs) of running time 0: the recording start. */
  setStart(startUs: number): void {
    this.#startUs ??= startUs;
  }

  /**
   * The recording ends at this running time: videorate repeats the last frame to fill its final
   * interval at EOS, and an image of a moment after the stop was never seen, so it is dropped.
   */
  setEnd(endRunningTimeNs: bigint): void {
    this.#endNs ??= endRunningTimeNs;
  }

  onImage(msg: ImageMessage): void {
    if (this.#endNs !== null && msg.runningTimeNs >= this.#endNs) {
      void unlink(msg.filename).catch(() => undefined);
      return;
    }
    const at = new Date(Math.round((this.#startUs ?? 0) / 1000 + Number(msg.runningTimeNs) / 1e6));
    const name = imageFilename(this.plan.imagePrefix, this.plan.suffix, this.#count, at);
    this.#count++;
    this.#firstAt ??= at;
    this.#lastAt = at;
    this.#takenAt.set(msg.filename, at);
    try {
      this.#queue.enqueue(msg.filename, this.plan.storageDir + name, 'jpeg');
    } catch {
      // Reported through onError; the image stays on disk.
    }
  }

  /** Waits for every image's upload; rejects with the first failure. */
  async finish(): Promise<void> {
    await this.#queue.drain();
  }

  /** Images stored so far (for the manifest). */
  get stored(): readonly { filename: string; timestamp: Date; location: string }[] {
    return this.#stored;
  }

  fillInfo(info: ImagesInfo, endedAtNs: bigint): void {
    info.imageCount = BigInt(this.#queue.uploaded.count);
    if (this.#firstAt) info.startedAt = BigInt(this.#firstAt.getTime()) * 1_000_000n;
    info.endedAt = this.#lastAt ? endedAtNs : 0n;
  }
}
