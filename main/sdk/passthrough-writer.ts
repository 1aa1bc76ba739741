import type { Writable } from 'node:stream';
import { gdpBufferHeader, gdpCaps, gdpStreamStart, gdpTimeSegment } from '../../gst/gdp.js';
import { passthroughCaps, type PassthroughVideoCodec } from '../../gst/passthrough-pipeline.js';
import type { EncodedFrame } from './encoded-track.js';

/**
 * Writes a track's encoded video frames, as received, into the passthrough pipeline's GDP input:
 * - keyframe-gated: nothing is written before the first keyframe (whose coded size sets the caps);
 * - in RTP order: the browser hands a frame over as soon as all its packets are in, so a frame
 *   whose lost packet came back through a retransmission arrives after the frames that follow it.
 *   Frames wait up to REORDER_WINDOW_MS (of RTP time) for such a latecomer and are written in
 *   their publisher's order. Without this the latecomer would be dropped and every frame after it
 *   would decode against a picture the decoder never had (a smeared picture until the next
 *   keyframe, which a publisher sends every few seconds at best);
 * - a frame later than that is dropped, and so is every delta frame after it until a keyframe,
 *   which is asked for at once (onKeyframeNeeded): the file holds the last good picture for those
 *   few frames instead of a damaged one;
 * - stamped from the RTP timestamps (90 kHz, unwrapped), i.e. the publisher's own frame spacing,
 *   from 0 at the first keyframe; a PTS never decreases;
 * - delta frames carry GST_BUFFER_FLAG_DELTA_UNIT, so the muxer marks keyframes (seek points);
 * - the SFU's filler is not written (see isSfuFiller).
 */

const VIDEO_CLOCK_HZ = 90_000;
/** GST_BUFFER_FLAG_DELTA_UNIT = GST_MINI_OBJECT_FLAG_LAST << 9. */
const BUFFER_FLAG_DELTA_UNIT = 0x2000;
/** An RTP jump further than this (either way) is a new timeline: continue 1 frame after the last. */
const MAX_RTP_JUMP = 10 * VIDEO_CLOCK_HZ;
const ASSUMED_FRAME_TICKS = VIDEO_CLOCK_HZ / 30;
/** One millisecond: the container's time unit. */
const MIN_SPACING_TICKS = VIDEO_CLOCK_HZ / 1000;
/**
 * How long (RTP time) a frame waits for an earlier one. Chrome asks for a lost packet again about
 * every round trip, up to 10 times, so a retransmission that completes a frame comes a few round
 * trips late at most. Half a second covers that on any network a recorder should be on, and only
 * delays the writing. (Not measured on real loss: loopback tests lose nothing; the test hook in
 * templates/track shows the reordering itself.)
 */
export const REORDER_WINDOW_MS = 500;

export interface PassthroughStats {
  written: number;
  keyframes: number;
  /** Where the keyframes are in the file (s, the first MAX_KEYFRAME_TIMES): a source's recovery points. */
  keyframeTimesS: number[];
  droppedBeforeKeyframe: number;
  /** Arrived after a later frame and put back in their place. */
  reordered: number;
  /** Arrived after a later frame had been written (beyond the reorder window): not written. */
  droppedLate: number;
  /** Delta frames after a late one, until the next keyframe: not written. */
  droppedAwaitingKeyframe: number;
  /** A second frame within a millisecond of another (a simulcast layer forwarded twice across a switch). */
  droppedDuplicates: number;
  /** The SFU's blank frames and any delta frame after them until a real keyframe. */
  droppedFiller: number;
  lastPtsNs: bigint;
}

const MAX_KEYFRAME_TIMES = 100;

/** Below this coded width or height a keyframe is no publisher's picture. */
const MIN_PICTURE_PX = 16;

/**
 * LiveKit's SFU ends a forwarded video track (seen on unpublish) with ~200 ms of tiny blank
 * keyframes of its own (VP8: 8x8), stamped from its clock, not on the publisher's frame grid.
 * Written, a recording of an unpublished track ended in six 8x8 frames, 86 ms after the last real
 * one, and ffmpeg's decode of it reported non-monotonic timestamps.
 */
function isSfuFiller(f: EncodedFrame): boolean {
  return f.keyframe && f.width > 0 && f.height > 0 && (f.width < MIN_PICTURE_PX || f.height < MIN_PICTURE_PX);
}

interface Pending {
  /** Unwrapped RTP ticks since the first keyframe. */
  readonly ticks: number;
  readonly frame: EncodedFrame;
}

export interface PassthroughWriterOptions {
  /** The first keyframe arrived: the recording starts at its arrival (page clock, µs). */
  readonly onStart: (arrivalUs: number) => void;
  /** A frame was lost from the chain: the publisher should send a keyframe (called repeatedly until one comes). */
  readonly onKeyframeNeeded?: () => void;
  /** REORDER_WINDOW_MS unless given (0: written as they come). */
  readonly reorderWindowMs?: number;
}

export class PassthroughVideoWriter {
  #started = false;
  #closed = false;
  readonly #windowTicks: number;
  /** The newest frame seen (any arrival order): RTP timestamp and its unwrapped ticks. */
  #newestRtp = 0;
  #newestTicks = 0;
  /** Frames not yet written, in ticks order. */
  #pending: Pending[] = [];
  /** Source ticks of the last frame written (-1: none yet) and its output ticks (with spacing bumps). */
  #lastSourceTicks = -1;
  #lastOutTicks = 0;
  #awaitingKeyframe = false;
  /** The last keyframe was the SFU's filler: what follows it until a real keyframe is not written. */
  #inFiller = false;
  readonly stats: PassthroughStats = {
    written: 0,
    keyframes: 0,
    keyframeTimesS: [],
    droppedBeforeKeyframe: 0,
    reordered: 0,
    droppedLate: 0,
    droppedAwaitingKeyframe: 0,
    droppedDuplicates: 0,
    droppedFiller: 0,
    lastPtsNs: -1n,
  };

  constructor(
    private readonly out: Writable,
    private readonly codec: PassthroughVideoCodec,
    private readonly opts: PassthroughWriterOptions,
  ) {
    this.#windowTicks = Math.round(((opts.reorderWindowMs ?? REORDER_WINDOW_MS) * VIDEO_CLOCK_HZ) / 1000);
  }

  get started(): boolean {
    return this.#started;
  }

  push(f: EncodedFrame): void {
    if (this.#closed || f.kind !== 'video') return;
    if (f.keyframe) this.#inFiller = isSfuFiller(f);
    if (this.#inFiller) {
      this.stats.droppedFiller++;
      return;
    }
    if (!this.#started) {
      if (!f.keyframe) {
        this.stats.droppedBeforeKeyframe++;
        return;
      }
      this.#started = true;
      this.#newestRtp = f.rtpTimestamp;
      this.out.write(gdpStreamStart('egress-passthrough'));
      this.out.write(gdpCaps(passthroughCaps(this.codec, f.width, f.height)));
      this.out.write(gdpTimeSegment());
      this.opts.onStart(f.arrivalUs);
      this.#insert({ ticks: 0, frame: f });
      this.#release();
      return;
    }
    // Signed 32-bit difference to the newest frame: unwraps the RTP timestamp.
    const delta = (f.rtpTimestamp - this.#newestRtp) | 0;
    if (delta > MAX_RTP_JUMP || delta < -MAX_RTP_JUMP) {
      // A new timeline (the publisher restarted its stream): what waits is written, and the new
      // one continues a frame after it.
      this.#release(true);
      this.#newestRtp = f.rtpTimestamp;
      this.#newestTicks = Math.max(this.#newestTicks, this.#lastSourceTicks) + ASSUMED_FRAME_TICKS;
      this.#insert({ ticks: this.#newestTicks, frame: f });
      this.#release();
      return;
    }
    const ticks = this.#newestTicks + delta;
    if (delta > 0) {
      this.#newestRtp = f.rtpTimestamp;
      this.#newestTicks = ticks;
    }
    if (ticks < 0) {
      // Older than the first keyframe (overtaken by it): before the recording.
      this.stats.droppedBeforeKeyframe++;
      return;
    }
    if (ticks < this.#lastSourceTicks || (ticks === this.#lastSourceTicks && !f.keyframe)) {
      if (ticks === this.#lastSourceTicks) this.stats.droppedDuplicates++;
      else this.#lost();
      return;
    }
    if (delta < 0) this.stats.reordered++;
    this.#insert({ ticks, frame: f });
    this.#release();
  }

  /** Writes what waits; nothing more is written (the pipeline's input is then closed for EOS by its owner). */
  close(): void {
    if (this.#closed) return;
    this.#release(true);
    this.#closed = true;
  }

  /** A frame the chain needed was not written: nothing decodes until a keyframe. */
  #lost(): void {
    this.stats.droppedLate++;
    this.#awaitingKeyframe = true;
    this.opts.onKeyframeNeeded?.();
  }

  #insert(p: Pending): void {
    // Frames less than a millisecond apart are one picture twice: the SFU switched simulcast layers
    // there and forwarded both. A keyframe replaces the waiting frames there (it starts the chain the
    // next frames decode from); a delta frame there is dropped. Kept, the two would go a millisecond
    // apart, which a container holds but ffmpeg's decode reports as "non monotonically increasing
    // dts" (seen once in a clean-clone run).
    const near = this.#pending.filter((q) => Math.abs(q.ticks - p.ticks) < MIN_SPACING_TICKS);
    if (near.length > 0) {
      if (!p.frame.keyframe) {
        this.stats.droppedDuplicates++;
        return;
      }
      this.#pending = this.#pending.filter((q) => !near.includes(q));
      this.stats.droppedDuplicates += near.length;
    }
    let i = this.#pending.length;
    while (i > 0 && (this.#pending[i - 1] as Pending).ticks > p.ticks) i--;
    this.#pending.splice(i, 0, p);
  }

  #release(all = false): void {
    while (this.#pending.length > 0) {
      const p = this.#pending[0] as Pending;
      if (!all && this.#newestTicks - p.ticks < this.#windowTicks) return;
      this.#pending.shift();
      this.#write(p);
    }
  }

  #write(p: Pending): void {
    const f = p.frame;
    if (this.#awaitingKeyframe) {
      if (!f.keyframe) {
        this.stats.droppedAwaitingKeyframe++;
        this.opts.onKeyframeNeeded?.();
        return;
      }
      this.#awaitingKeyframe = false;
    }
    // Frames less than a millisecond apart go a millisecond apart (what follows keeps its spacing):
    // WebM and MP4 keep times in milliseconds, and two frames in one millisecond would share a
    // timestamp (decoders then report "non monotonically increasing dts").
    if (this.#lastSourceTicks >= 0) this.#lastOutTicks += Math.max(MIN_SPACING_TICKS, p.ticks - this.#lastSourceTicks);
    this.#lastSourceTicks = p.ticks;
    const ptsNs = (BigInt(this.#lastOutTicks) * 1_000_000_000n) / BigInt(VIDEO_CLOCK_HZ);
    this.out.write(gdpBufferHeader(f.data.length, ptsNs, 0xffffffffffffffffn, f.keyframe ? 0 : BUFFER_FLAG_DELTA_UNIT));
    this.out.write(f.data);
    this.stats.written++;
    if (f.keyframe) {
      this.stats.keyframes++;
      if (this.stats.keyframeTimesS.length < MAX_KEYFRAME_TIMES) this.stats.keyframeTimesS.push(Number(ptsNs / 1_000_000n) / 1000);
    }
    this.stats.lastPtsNs = ptsNs;
  }
}
