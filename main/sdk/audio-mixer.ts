import { nowUs, type AudioChunkIn } from '../../gst/media-transport.js';
import { SDK_CHANNELS, SDK_SAMPLE_RATE } from './room-source.js';
import { logger } from '../log.js';

const log = logger('sdk-mixer');

/**
 * Mixes the audio tracks of an audio-only room composite or of a v2
 * media source's audio routes into one
 * stereo stream on the egress clock. Each input's chunks are added at their sample position into a
 * ring buffer; a little behind real time (so late chunks still land) the mixed audio is handed on.
 * Routing: `both` adds each channel to its own side; `left` / `right` put the track's mono downmix
 * on one side only.
 */

export type AudioRoute = 'both' | 'left' | 'right';

/**
 * Mixed audio is handed on at least this far behind real time: a chunk's first sample is stamped
 * its 100 ms length and the receive delay (~50 ms, receive-delay.ts) before it arrives.
 */
const MIX_LAG_US = 300_000;
/**
 * A live input holds the mix back until its audio arrived (an event-loop stall delays chunks that
 * are then laid in the past), but never more than this: an input this far behind has paused.
 */
const MAX_INPUT_WAIT_US = 1_000_000;
const TICK_MS = 20;
/** Ring buffer length (frames): 10 s. */
const RING_FRAMES = SDK_SAMPLE_RATE * 10;
/** A chunk within this many frames of where its track left off is laid right after it. */
const CONTIGUOUS_FRAMES = SDK_SAMPLE_RATE / 200;

interface Input {
  readonly route: AudioRoute;
  nextFrame: number | null;
  /** Frames that came after their place had been handed on (not yet reported). */
  late: number;
  lateReportedAtUs: number;
}

/** Late audio is reported at most this often per input. */
const LATE_REPORT_US = 5_000_000;

export class AudioMixer {
  readonly #ring = new Float32Array(RING_FRAMES * SDK_CHANNELS);
  readonly #inputs = new Map<string, Input>();
  #startUs: number | null = null;
  /** Frames handed on so far (position of the next output frame). */
  #flushed = 0;
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly out: (chunk: AudioChunkIn) => void) {
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  addInput(id: string, route: AudioRoute): void {
    this.#inputs.set(id, { route, nextFrame: null, late: 0, lateReportedAtUs: 0 });
  }

  removeInput(id: string): void {
    this.#inputs.delete(id);
  }

  push(id: string, chunk: AudioChunkIn): void {
    const input = this.#inputs.get(id);
    if (!input || this.#closed) return;
    if (this.#startUs === null) {
      this.#startUs = chunk.ptsUs;
      // The first output starts with this chunk (it opens the recording).
    }
    const frames = chunk.data.length / 4 / chunk.channels;
    let pos = Math.round(((chunk.ptsUs - this.#startUs) * SDK_SAMPLE_RATE) / 1e6);
    if (input.nextFrame !== null && Math.abs(pos - input.nextFrame) <= CONTIGUOUS_FRAMES) pos = input.nextFrame;
    // An input never goes back over itself (its reader re-anchored the stamps back): the overlap
    // is cut, as the timeline does, instead of being added on top of what that input already laid.
    const skip = input.nextFrame !== null && pos < input.nextFrame ? Math.min(frames, input.nextFrame - pos) : 0;
    input.nextFrame = input.nextFrame === null ? pos + frames : Math.max(input.nextFrame, pos + frames);
    const src = new Float32Array(chunk.data.buffer.slice(chunk.data.byteOffset, chunk.data.byteOffset + chunk.data.length));
    const ch = chunk.channels;
    for (let i = skip; i < frames; i++) {
      const f = pos + i;
      // Already handed on, or too far ahead for the ring: dropped.
      if (f < this.#flushed || f >= this.#flushed + RING_FRAMES) {
        input.late++;
        continue;
      }
      const l = src[i * ch] as number;
      const r = src[i * ch + (ch > 1 ? 1 : 0)] as number;
      const at = (f % RING_FRAMES) * 2;
      if (input.route === 'both') {
        this.#ring[at] = (this.#ring[at] as number) + l;
        this.#ring[at + 1] = (this.#ring[at + 1] as number) + r;
      } else {
        const side = input.route === 'left' ? at : at + 1;
        this.#ring[side] = (this.#ring[side] as number) + (l + r) / 2;
      }
    }
    if (input.late > 0 && chunk.ptsUs - input.lateReportedAtUs >= LATE_REPORT_US) {
      // An input that stalled past MAX_INPUT_WAIT_US lost its place: say how much was not mixed.
      log.warn(`audio input ${id}: ${Math.round((input.late * 1000) / SDK_SAMPLE_RATE)} ms arrived after it was mixed and was dropped`);
      input.late = 0;
      input.lateReportedAtUs = chunk.ptsUs;
    }
    // Hand the first audio on at once: it is the recording's start signal.
    if (this.#flushed === 0) this.flushTo(chunk.ptsUs + (frames * 1e6) / SDK_SAMPLE_RATE);
  }

  #tick(): void {
    if (this.#startUs === null) return;
    const now = nowUs();
    let until = now - MIX_LAG_US;
    for (const input of this.#inputs.values()) {
      if (input.nextFrame === null) continue;
      const endUs = this.#startUs + (input.nextFrame * 1e6) / SDK_SAMPLE_RATE;
      if (endUs > now - MAX_INPUT_WAIT_US) until = Math.min(until, endUs);
    }
    this.flushTo(until);
  }

  /** Hands on the mixed audio up to `untilUs` (egress clock). */
  flushTo(untilUs: number): void {
    if (this.#startUs === null || this.#closed) return;
    const until = Math.floor(((untilUs - this.#startUs) * SDK_SAMPLE_RATE) / 1e6);
    const n = Math.min(until - this.#flushed, RING_FRAMES);
    if (n <= 0) return;
    const out = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      const at = ((this.#flushed + i) % RING_FRAMES) * 2;
      out[i * 2] = Math.max(-1, Math.min(1, this.#ring[at] as number));
      out[i * 2 + 1] = Math.max(-1, Math.min(1, this.#ring[at + 1] as number));
      this.#ring[at] = 0;
      this.#ring[at + 1] = 0;
    }
    const ptsUs = this.#startUs + (this.#flushed * 1e6) / SDK_SAMPLE_RATE;
    this.#flushed += n;
    this.out({ ptsUs, sampleRate: SDK_SAMPLE_RATE, channels: SDK_CHANNELS, data: Buffer.from(out.buffer) });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
