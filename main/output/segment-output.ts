import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SegmentsInfo } from '@livekit/protocol';
import type { SegmentsOutputPlan } from '../contracts/pipeline.js';
import type { EgressError } from '../contracts/errors.js';
import { segmentFilename } from '../request/filename.js';
import { segmentQueueCapacity, type UploadQueue, type UploadSink } from '../upload/index.js';
import type { FragmentMessage } from '../../gst/output-pipeline.js';
import { tsDurationNs } from '../../gst/ts-duration.js';
import { logger } from '../log.js';
import { MediaPlaylist } from './hls-playlist.js';

const log = logger('segments');

/** Local name of the fragments splitmuxsink writes; the stored names are computed here. */
const LOCAL_PATTERN = 'seg_%05d.ts';

export interface SegmentOutputOptions {
  readonly egressId: string;
  /** Config max_upload_queue (minutes): bounds the segments waiting for upload. */
  readonly maxUploadQueueMin: number;
  /** The first failure (segment upload failed, queue full): the egress fails. */
  readonly onError: (err: EgressError) => void;
  /** One video frame (ns), for the duration of a fragment cut short. */
  readonly frameNs?: bigint;
}

interface Segment {
  readonly index: number;
  readonly localPath: string;
  readonly storageName: string;
  readonly programDateTime: Date;
  readonly durationNs: bigint;
}

/**
 * The HLS output of one egress. splitmuxsink reports each fragment's open/close
 * with its running time; a closed fragment gets its stored name (INDEX or TIMESTAMP), is uploaded at
 * once, and enters the playlists only after its upload, strictly in order. The live playlist is
 * uploaded after every segment, the main playlist on the original's schedule and always at the end.
 */
export class SegmentOutput {
  readonly localDir: string;
  readonly #event: MediaPlaylist;
  readonly #live: MediaPlaylist | null;
  readonly #queue: UploadQueue;
  readonly #pending = new Map<string, Segment>();
  #open: { location: string; runningTimeNs: bigint } | null = null;
  #lastClosedAtMs = 0;
  #startUs: number | null = null;
  #index = 0;
  #durationNs = 0n;
  #firstPdt: Date | null = null;
  #lastMainUploadMs = 0;
  #segmentsSinceMainUpload = 0;
  #playlistLocation = '';
  #livePlaylistLocation = '';
  #finished = false;
  readonly #stored: { filename: string; location: string }[] = [];

  constructor(
    readonly plan: SegmentsOutputPlan,
    private readonly sink: UploadSink,
    private readonly opts: SegmentOutputOptions,
  ) {
    this.localDir = path.join(plan.localDir, 'hls');
    this.#event = new MediaPlaylist({ kind: 'event', targetDurationS: plan.segmentDurationS });
    this.#live = plan.livePlaylistFilename ? new MediaPlaylist({ kind: 'live', targetDurationS: plan.segmentDurationS }) : null;
    this.#queue = sink.createQueue({
      kind: 'segment',
      capacity: segmentQueueCapacity(opts.maxUploadQueueMin, plan.segmentDurationS),
      onUploaded: (item, outcome) => {
        this.#stored.push({ filename: outcome.storagePath, location: outcome.location });
        return this.#onUploaded(item.localPath);
      },
      onError: opts.onError,
    });
  }

  /** printf pattern splitmuxsink writes to. */
  get locationPattern(): string {
    return path.join(this.localDir, LOCAL_PATTERN);
  }

  async prepare(): Promise<void> {
    await mkdir(this.localDir, { recursive: true });
  }

  /** Wall clock (µs) of running time 0: the recording start. */
  setStart(startUs: number): void {
    this.#startUs ??= startUs;
  }

  /**
   * When (ms, wall clock) the last fragment was closed, or null while one is open: after the inputs
   * ended, a close then means the pipeline's EOS has gone through this output.
   */
  get closedAtMs(): number | null {
    return this.#open ? null : this.#lastClosedAtMs;
  }

  /** A splitmuxsink fragment message from the pipeline. */
  onFragment(msg: FragmentMessage): void {
    if (this.#finished) return;
    if (msg.kind === 'opened') {
      this.#open = { location: msg.location, runningTimeNs: msg.runningTimeNs };
      return;
    }
    const open = this.#open;
    if (!open || open.location !== msg.location) return;
    this.#open = null;
    this.#lastClosedAtMs = Date.now();
    this.#closeSegment(open.location, open.runningTimeNs, msg.runningTimeNs);
  }

  #closeSegment(localPath: string, startNs: bigint, endNs: bigint): void {
    const startUs = this.#startUs ?? 0;
    // PDT = wall clock of the recording start + the segment's start running time. A pause does not
    // show (no discontinuity): consecutive PDTs differ by EXTINF and trail the wall clock after it.
    const pdt = new Date(Math.round(startUs / 1000 + Number(startNs) / 1e6));
    const index = this.#index++;
    const storageName = segmentFilename(this.plan.segmentPrefix, this.plan.segmentSuffix, index, pdt);
    const seg: Segment = { index, localPath, storageName, programDateTime: pdt, durationNs: endNs > startNs ? endNs - startNs : 0n };
    this.#pending.set(localPath, seg);
    try {
      this.#queue.enqueue(localPath, this.plan.storageDir + storageName, 'ts');
    } catch {
      // The queue reported the failure through onError; the file stays on disk.
    }
  }

  async #onUploaded(localPath: string): Promise<void> {
    const seg = this.#pending.get(localPath);
    if (!seg) return;
    this.#pending.delete(localPath);
    const entry = { programDateTime: seg.programDateTime, durationS: Number(seg.durationNs) / 1e9, uri: seg.storageName };
    this.#firstPdt ??= seg.programDateTime;
    this.#durationNs += seg.durationNs;
    this.#event.append(entry);
    this.#live?.append(entry);
    this.#segmentsSinceMainUpload++;
    if (this.#live) await this.#uploadPlaylist(this.#live, this.plan.livePlaylistFilename, false);
    // Main playlist: first time, every (hours since start + 1) segments, or after a minute.
    const hours = this.#firstPdt ? Math.floor((Date.now() - this.#firstPdt.getTime()) / 3_600_000) : 0;
    if (this.#lastMainUploadMs === 0 || this.#segmentsSinceMainUpload >= hours + 1 || Date.now() - this.#lastMainUploadMs > 60_000) {
      await this.#uploadPlaylist(this.#event, this.plan.playlistFilename, false);
    }
  }

  /** Writes and uploads one playlist; failures before the end are logged and retried next time. */
  async #uploadPlaylist(playlist: MediaPlaylist, filename: string, final: boolean): Promise<void> {
    const local = path.join(this.localDir, filename);
    try {
      await writeFile(local, playlist.render());
      const out = await this.sink.upload(local, this.plan.storageDir + filename, 'm3u8');
      if (playlist === this.#event) {
        this.#playlistLocation = out.location;
        this.#lastMainUploadMs = Date.now();
        this.#segmentsSinceMainUpload = 0;
      } else this.#livePlaylistLocation = out.location;
    } catch (err) {
      if (final) throw err;
      log.warn(`playlist upload failed: ${(err as Error).message} [egress:${this.opts.egressId}]`);
    }
  }

  /**
   * Ends the output after the pipeline stopped: a fragment still open (pipeline killed) is kept as
   * the last segment up to `endRunningTimeNs`, every segment is uploaded, both playlists get
   * ENDLIST and are uploaded. Rejects with the first upload failure (what was stored stays listed).
   */
  async finish(endRunningTimeNs: bigint): Promise<void> {
    if (this.#finished) return;
    const open = this.#open;
    if (open) {
      this.#open = null;
      const size = await stat(open.location).then(
        (s) => s.size,
        () => 0,
      );
      // A fragment the pipeline never closed (it died): as long as the media it holds, which can be
      // less than the wall clock suggests when the pipeline ran behind.
      const held = size > 0 ? await tsDurationNs(open.location, this.opts.frameNs ?? 33_333_333n).catch(() => null) : null;
      const end = held !== null ? open.runningTimeNs + held : endRunningTimeNs;
      if (size > 0 && end > open.runningTimeNs) this.#closeSegment(open.location, open.runningTimeNs, end);
    }
    this.#finished = true;
    let failure: unknown = null;
    try {
      await this.#queue.drain();
    } catch (err) {
      failure = err;
    }
    this.#event.close();
    this.#live?.close();
    if (this.#event.segmentCount > 0) {
      await this.#uploadPlaylist(this.#event, this.plan.playlistFilename, true);
      if (this.#live) await this.#uploadPlaylist(this.#live, this.plan.livePlaylistFilename, true);
    }
    if (failure) throw failure;
  }

  /** Fills SegmentsInfo with what was uploaded. */
  fillInfo(info: SegmentsInfo): void {
    const uploaded = this.#queue.uploaded;
    info.segmentCount = BigInt(uploaded.count);
    info.size = BigInt(uploaded.bytes);
    info.duration = this.#durationNs;
    info.playlistLocation = this.#playlistLocation;
    info.livePlaylistLocation = this.#livePlaylistLocation;
    if (this.#firstPdt) {
      info.startedAt = BigInt(this.#firstPdt.getTime()) * 1_000_000n;
      info.endedAt = info.startedAt + this.#durationNs;
    }
  }

  /** Segments stored so far, in playlist order, and the playlist's location (for the manifest). */
  get stored(): { playlistLocation: string; segments: readonly { filename: string; location: string }[] } {
    return { playlistLocation: this.#playlistLocation, segments: this.#stored };
  }
}
