import { nowUs, type AudioChunkIn, type MediaTransport, type VideoFrameIn } from '../../gst/media-transport.js';
import { SDK_CHANNELS, SDK_SAMPLE_RATE } from './room-source.js';
import { blackI420, silenceF32 } from './pcm.js';

/**
 * Keeps an SDK source's media continuous on the way into the transport:
 * - the recording starts at the first media of any subscribed track (the original's "first packet"
 *   start signal), stamped at that media's time;
 * - audio never goes backwards: a chunk overlapping what was already written loses the overlap
 *   (the timeline stays anchored on real time instead of drifting late); while no audio arrives,
 *   silence is written a little behind real time, so a late chunk is never displaced by it;
 * - video: while no video track is live (none yet, unpublished, muted) a black picture at the
 *   output size is shown; the transport repeats the last picture and videorate makes the rate exact.
 */

/**
 * Silence is written only this far behind real time: real audio arriving later would be cut, and on
 * a busy machine an event-loop stall delays chunks by hundreds of ms.
 */
const SILENCE_LAG_US = 1_000_000;
const TICK_MS = 20;

export interface MediaTimelineOptions {
  /** The GStreamer transport, or any sink that takes stamped media the same way (WebSocket PCM). */
  readonly transport: Pick<MediaTransport, 'start' | 'pushAudio' | 'pushVideo'>;
  /** Output picture size (the black picture); null = no video. */
  readonly video: { readonly width: number; readonly height: number } | null;
  readonly audio: boolean;
  /** Called once, with the recording start on the egress clock. */
  readonly onStart: (atUs: number) => void;
}

export class MediaTimeline {
  #startUs: number | null = null;
  #audioEndUs = -Infinity;
  #videoLive = false;
  #black: Buffer | null = null;
  #closed = false;
  /** No silence is written past this instant while set (the room connection is being retried). */
  #holdUs: number | null = null;
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly opts: MediaTimelineOptions) {
    this.#timer = setInterval(() => this.#fillSilence(nowUs() - SILENCE_LAG_US), TICK_MS);
  }

  get started(): boolean {
    return this.#startUs !== null;
  }

  pushVideo(frame: VideoFrameIn): void {
    if (this.#closed || !this.opts.video) return;
    this.#videoLive = true;
    this.#startAt(frame.ptsUs);
    this.opts.transport.pushVideo(frame);
  }

  pushAudio(chunk: AudioChunkIn): void {
    if (this.#closed || !this.opts.audio) return;
    this.#startAt(chunk.ptsUs);
    let { ptsUs, data } = chunk;
    const bytesPerFrame = 4 * chunk.channels;
    if (ptsUs < this.#audioEndUs) {
      const overlap = Math.round(((this.#audioEndUs - ptsUs) * chunk.sampleRate) / 1e6);
      if (overlap * bytesPerFrame >= data.length) return;
      data = data.subarray(overlap * bytesPerFrame);
      ptsUs = this.#audioEndUs;
    }
    this.#audioEndUs = ptsUs + ((data.length / bytesPerFrame) * 1e6) / chunk.sampleRate;
    this.opts.transport.pushAudio({ ...chunk, ptsUs, data });
  }

  /** No live video from now on (track unpublished, muted or never there): show black. */
  videoGone(atUs = nowUs()): void {
    this.#videoLive = false;
    if (this.#startUs !== null) this.#pushBlack(Math.max(atUs, this.#startUs));
  }

  /** Writes silence (and a black picture when video is idle) up to `stopUs`, so both inputs reach it. */
  fillTo(stopUs: number): void {
    if (this.#startUs === null || this.#closed) return;
    this.#fillSilence(stopUs);
    if (this.opts.video && !this.#videoLive) this.#pushBlack(stopUs);
  }

  /**
   * Writes no silence past `atUs` until release(): the room connection was lost there, and if it
   * does not come back the recording ends there, without the retries' silence.
   */
  hold(atUs: number): void {
    this.#holdUs ??= atUs;
  }

  release(): void {
    this.#holdUs = null;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  #startAt(atUs: number): void {
    if (this.#startUs !== null) return;
    this.#startUs = atUs;
    this.opts.transport.start(atUs);
    this.opts.onStart(atUs);
    // Audio is continuous from the start; video is black until a picture arrives.
    if (this.opts.audio) this.#audioEndUs = atUs;
    if (this.opts.video && !this.#videoLive) this.#pushBlack(atUs);
  }

  #pushBlack(atUs: number): void {
    const v = this.opts.video;
    if (!v) return;
    this.#black ??= blackI420(v.width, v.height);
    this.opts.transport.pushVideo({ ptsUs: atUs, format: 'I420', width: v.width, height: v.height, data: this.#black });
  }

  #fillSilence(upToUs: number): void {
    const untilUs = this.#holdUs === null ? upToUs : Math.min(upToUs, this.#holdUs);
    if (this.#closed || this.#startUs === null || !this.opts.audio || this.#audioEndUs >= untilUs) return;
    const frames = Math.floor(((untilUs - this.#audioEndUs) * SDK_SAMPLE_RATE) / 1e6);
    if (frames < SDK_SAMPLE_RATE / 100) return;
    const ptsUs = this.#audioEndUs;
    this.#audioEndUs = ptsUs + (frames * 1e6) / SDK_SAMPLE_RATE;
    this.opts.transport.pushAudio({ ptsUs, sampleRate: SDK_SAMPLE_RATE, channels: SDK_CHANNELS, data: silenceF32(frames, SDK_CHANNELS) });
  }
}
