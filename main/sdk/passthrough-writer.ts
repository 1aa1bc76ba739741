import type { Writable } from 'node:stream';
import { gdpBufferHeader, gdpCaps, gdpStreamStart, gdpTimeSegment } from '../../gst/gdp.js';
import { passthroughCaps, type PassthroughVideoCodec } from '../../gst/passthrough-pipeline.js';
import type { EncodedFrame } from './encoded-track.js';

/**
 * Writes a track's encoded video frames, as received, into the passthrough pipeline's GDP input:
 * - keyframe-gated: nothing is written before the first keyframe (whose coded size sets the caps);
 * - stamped from the RTP timestamps (90 kHz, unwrapped), i.e. the publisher's own frame spacing,
 *   from 0 at the first keyframe; a stamp that would go backwards (reordering, an RTP jump back) is
 *   dropped, so a PTS never decreases;
 * - delta frames carry GST_BUFFER_FLAG_DELTA_UNIT, so the muxer marks keyframes (seek points).
 */

const VIDEO_CLOCK_HZ = 90_000;
/** GST_BUFFER_FLAG_DELTA_UNIT = GST_MINI_OBJECT_FLAG_LAST << 9. */
const BUFFER_FLAG_DELTA_UNIT = 0x2000;
/** An RTP jump further than this (either way) is a new timeline: continue 1 frame after the last. */
const MAX_RTP_JUMP = 10 * VIDEO_CLOCK_HZ;
const ASSUMED_FRAME_TICKS = VIDEO_CLOCK_HZ / 30;
/** One millisecond: the container's time unit. */
const MIN_SPACING_TICKS = VIDEO_CLOCK_HZ / 1000;

export interface PassthroughStats {
  written: number;
  keyframes: number;
  /** Where the keyframes are in the file (s, the first MAX_KEYFRAME_TIMES): a source's recovery points. */
  keyframeTimesS: number[];
  droppedBeforeKeyframe: number;
  droppedBackwards: number;
  lastPtsNs: bigint;
}

const MAX_KEYFRAME_TIMES = 100;

export class PassthroughVideoWriter {
  #started = false;
  #closed = false;
  #lastRtp = 0;
  /** Unwrapped ticks since the first keyframe. */
  #ticks = 0;
  readonly stats: PassthroughStats = { written: 0, keyframes: 0, keyframeTimesS: [], droppedBeforeKeyframe: 0, droppedBackwards: 0, lastPtsNs: -1n };

  constructor(
    private readonly out: Writable,
    private readonly codec: PassthroughVideoCodec,
    /** The first keyframe was written: the recording starts at its arrival (page clock, µs). */
    private readonly onStart: (arrivalUs: number) => void,
  ) {}

  get started(): boolean {
    return this.#started;
  }

  push(f: EncodedFrame): void {
    if (this.#closed || f.kind !== 'video') return;
    if (!this.#started) {
      if (!f.keyframe) {
        this.stats.droppedBeforeKeyframe++;
        return;
      }
      this.#started = true;
      this.#lastRtp = f.rtpTimestamp;
      this.out.write(gdpStreamStart('egress-passthrough'));
      this.out.write(gdpCaps(passthroughCaps(this.codec, f.width, f.height)));
      this.out.write(gdpTimeSegment());
      this.onStart(f.arrivalUs);
    } else {
      // Signed 32-bit difference: unwraps the RTP timestamp.
      let delta = (f.rtpTimestamp - this.#lastRtp) | 0;
      if (delta > MAX_RTP_JUMP || delta < -MAX_RTP_JUMP) delta = ASSUMED_FRAME_TICKS;
      if (delta < 0 || (delta === 0 && !f.keyframe)) {
        // Backwards, or a second frame of the same picture (a simulcast layer forwarded twice across
        // a switch): a container cannot hold two frames at one time.
        this.stats.droppedBackwards++;
        return;
      }
      // A keyframe at the same RTP time as the frame before (the SFU switched layers on it) starts
      // the chain the next frames decode from: kept, a millisecond later, so times stay increasing.
      // Any frame less than a millisecond after the last goes a millisecond after it too: WebM and
      // MP4 keep times in milliseconds, and two frames in one millisecond would share a timestamp
      // (decoders then report "non monotonically increasing dts").
      if (delta < MIN_SPACING_TICKS) delta = MIN_SPACING_TICKS;
      this.#lastRtp = f.rtpTimestamp;
      this.#ticks += delta;
    }
    const ptsNs = (BigInt(this.#ticks) * 1_000_000_000n) / BigInt(VIDEO_CLOCK_HZ);
    this.out.write(gdpBufferHeader(f.data.length, ptsNs, 0xffffffffffffffffn, f.keyframe ? 0 : BUFFER_FLAG_DELTA_UNIT));
    this.out.write(f.data);
    this.stats.written++;
    if (f.keyframe) {
      this.stats.keyframes++;
      if (this.stats.keyframeTimesS.length < MAX_KEYFRAME_TIMES) this.stats.keyframeTimesS.push(Number(ptsNs / 1_000_000n) / 1000);
    }
    this.stats.lastPtsNs = ptsNs;
  }

  /** Nothing more is written (the pipeline's input is then closed for EOS by its owner). */
  close(): void {
    this.#closed = true;
  }
}
