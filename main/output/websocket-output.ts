import { StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import type { AudioChunkOut } from '../../gst/media-transport.js';
import { EgressError } from '../contracts/errors.js';
import type { StreamUrlPlan } from '../contracts/pipeline.js';
import { WebSocketPcmSink } from '../sdk/websocket-pcm.js';
import { PcmResampler } from './pcm-resampler.js';

/**
 * The WebSocket output of a page egress (v2 web or template source): the
 * page's audio leaves as raw PCM over the same writer track egress uses (WebSocketPcmSink), fed by
 * the media transport instead of GStreamer — nothing is encoded. Audio only: validation already
 * dropped the video (or refused a video-only request). A page has no track to mute, so no
 * `{"muted":…}` frames are sent (the original sends them for SDK sources only).
 *
 * Owns the one StreamInfo of the output: ACTIVE from the recording start, FINISHED at the end, FAILED
 * with the error when the server closed first or the connection broke.
 */

/** The writer sends 48 kHz stereo s16le; Chromium captures at its output rate (often 44.1 kHz). */
const PCM_RATE = 48_000;
/** A gap this long in the transport's running time (a stalled page) is sent as silence. */
const GAP_US = 5_000;

export class WebSocketAudioOutput {
  readonly #sink: WebSocketPcmSink;
  readonly #info: StreamInfo;
  #resampler: PcmResampler | null = null;
  /** End of the input fed so far (running time, µs), and of the output sent (48 kHz frames). */
  #inEndUs: number | null = null;
  #outFrames = 0;
  #channels = 2;

  constructor(
    readonly url: StreamUrlPlan,
    results: StreamInfo[],
    onError: (err: EgressError) => void,
  ) {
    this.#sink = new WebSocketPcmSink(url.url);
    this.#sink.on('failed', (err) => onError(err));
    this.#info = new StreamInfo({ url: url.redactedUrl, status: StreamInfo_Status.ACTIVE });
    results.push(this.#info);
  }

  /** Dials the server; rejects with the dial error (400), which fails the egress. */
  connect(): Promise<void> {
    return this.#sink.connect();
  }

  get bytesSent(): number {
    return this.#sink.bytesSent;
  }

  /**
   * The transport's audio output: running time from the recording start, trimmed to it. Goes out at
   * 48 kHz (resampled when the page's rate differs) on a continuous timeline: a gap in the input is
   * filled with silence before resampling.
   */
  readonly write = (chunk: AudioChunkOut): void => {
    const ptsUs = Number(chunk.ptsNs) / 1000;
    if (this.#resampler === null || this.#resampler.inRate !== chunk.sampleRate || this.#resampler.channels !== chunk.channels) {
      if (this.#resampler && this.#resampler.inRate !== PCM_RATE) this.#send(this.#resampler.flush());
      this.#resampler = new PcmResampler(chunk.sampleRate, PCM_RATE, chunk.channels);
      this.#channels = chunk.channels;
      // the output timeline goes on from where it is (or starts at this chunk)
      if (this.#inEndUs === null) this.#outFrames = Math.round((ptsUs * PCM_RATE) / 1e6);
    } else if (this.#inEndUs !== null && ptsUs - this.#inEndUs > GAP_US) {
      const silence = new Float32Array(Math.round(((ptsUs - this.#inEndUs) * chunk.sampleRate) / 1e6) * chunk.channels);
      this.#send(chunk.sampleRate === PCM_RATE ? silence : this.#resampler.push(silence));
    }
    const samples = new Float32Array(chunk.data.buffer.slice(chunk.data.byteOffset, chunk.data.byteOffset + chunk.data.length));
    this.#inEndUs = ptsUs + ((samples.length / chunk.channels) * 1e6) / chunk.sampleRate;
    this.#send(chunk.sampleRate === PCM_RATE ? samples : this.#resampler.push(samples));
  };

  #send(samples: Float32Array): void {
    if (samples.length === 0) return;
    const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    this.#sink.pushAudio({ ptsUs: (this.#outFrames * 1e6) / PCM_RATE, sampleRate: PCM_RATE, channels: this.#channels, data });
    this.#outFrames += samples.length / this.#channels;
  }

  /** The recording started (wall clock, ns). */
  markStarted(atNs: bigint): void {
    this.#info.startedAt = atNs;
  }

  /** EOS: a Close frame, then the StreamInfo's end (FAILED with `failure` when the egress failed). */
  async finish(endedAtNs: bigint, failure: EgressError | null): Promise<void> {
    if (this.#resampler && this.#resampler.inRate !== PCM_RATE && !failure) this.#send(this.#resampler.flush());
    await this.#sink.close();
    const info = this.#info;
    if (info.startedAt > 0n) {
      info.endedAt = endedAtNs;
      info.duration = endedAtNs > info.startedAt ? endedAtNs - info.startedAt : 0n;
    }
    info.status = failure ? StreamInfo_Status.FAILED : StreamInfo_Status.FINISHED;
    if (failure) info.error = failure.message;
  }
}
