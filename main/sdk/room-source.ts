import './rtc-env.js';
import { AudioStream, Room, VideoBufferType, VideoStream, type RemoteTrack } from '@livekit/rtc-node';
import { nowUs, type AudioChunkIn, type VideoFrameIn } from '../../gst/media-transport.js';
import { monotonicToEgressUs } from '../capture/clock.js';
import { logger } from '../log.js';
import { s16ToF32 } from './pcm.js';
import { ReceiveDelays } from './receive-delay.js';

/**
 * The room side of an SDK source (no page): the recorder's @livekit/rtc-node connection, with
 * auto-subscribe off so the egress subscribes to exactly the tracks it records,
 * and readers that turn a subscribed track into decoded media stamped on the egress clock:
 * - video: rtc-node's `VideoFrameEvent.timestampUs` is libwebrtc's render time on CLOCK_MONOTONIC
 *   (the instant libwebrtc means it to be shown: after its jitter buffer, decoder and a render lead), mapped
 *   onto the egress clock exactly (clock.ts); a source whose stamps are not on that clock falls back
 *   to arrival time;
 * - audio: an rtc-node AudioFrame carries no timestamp, so the first 10 ms chunk ends when it
 *   arrives and the following ones are laid end to end (the sample count is exact; an event-loop
 *   stall only delays their arrival). A chunk arriving well after its place (the stream paused:
 *   muted, DTX, a lost connection) re-anchors the timeline forward; one arriving well before it
 *   means the anchor was taken late (the first chunk waited in a stall) and re-anchors it back.
 * Both are then moved back by how long the receiving side held them (receive-delay.ts: NetEQ and
 * the packet time for audio, jitter buffer, decoder and render lead for video), which differs by
 * kind: stamped at playout, a participant's audio came out 30–40 ms behind its video.
 * Frames stay at the published size: GStreamer scales them to the output.
 */

const log = logger('room-source');

export const SDK_SAMPLE_RATE = 48000;
export const SDK_CHANNELS = 2;

/** A stamp further than this from the arrival time is not on CLOCK_MONOTONIC. */
const MONOTONIC_TOLERANCE_US = 5_000_000;
/** A chunk arriving this much later than its place re-anchors the audio timeline (a pause). */
const AUDIO_GAP_US = 150_000;
/** A chunk arriving this much earlier than its place re-anchors it back (the anchor was late). */
const AUDIO_EARLY_US = 10_000;
/**
 * Decoded audio is read in 100 ms frames (rtc-node's default is 10 ms): each frame is one FFI event,
 * one Node callback and one pipeline write. Measured with bench/sdk-sources (Opus track → OGG, 30 s):
 * 6.41 CPU-s per recorded minute at 10 ms (handler 4.54, gst 1.87), 4.09 at 50 ms, 3.65 at 100 ms
 * (handler 2.82, gst 0.83). Each frame is stamped from its arrival less its length, as before; the
 * mixer hands on its output 300 ms behind real time and the timeline writes silence 1 s behind, so
 * a longer frame still arrives before its place is filled.
 */
const AUDIO_FRAME_MS = 100;

export interface TrackReader {
  readonly sid: string;
  /** Stops reading; resolves once the reader has ended. */
  cancel(): Promise<void>;
  /** Resolves when the track's stream ends (unsubscribed, unpublished, room gone). */
  readonly ended: Promise<void>;
}

export interface RoomSourceOptions {
  readonly wsUrl: string;
  readonly token: string;
  readonly egressId: string;
}

export class RoomSource {
  readonly room = new Room();
  #disconnecting = false;
  readonly #delays: ReceiveDelays;

  constructor(private readonly opts: RoomSourceOptions) {
    this.#delays = new ReceiveDelays(() => this.room.getRtcStats(), opts.egressId);
  }

  /** Joins the room as the recorder; nothing is subscribed until asked. */
  async connect(): Promise<void> {
    await this.room.connect(this.opts.wsUrl, this.opts.token, { autoSubscribe: false, dynacast: false });
    log.info(`joined room ${this.room.name ?? ''} [egress:${this.opts.egressId}]`);
  }

  /** True once disconnect() was called (a Disconnected event after it is ours). */
  get disconnecting(): boolean {
    return this.#disconnecting;
  }

  async disconnect(): Promise<void> {
    if (this.#disconnecting) return;
    this.#disconnecting = true;
    this.#delays.stop();
    await this.room.disconnect().catch(() => undefined);
  }

  /** Reads decoded video of `track` as I420 frames stamped on the egress clock. */
  readVideo(track: RemoteTrack, onFrame: (f: VideoFrameIn) => void): TrackReader {
    const reader = new VideoStream(track).getReader();
    this.#delays.start();
    let offsetUs: number | null = null;
    const ended = (async () => {
      for (;;) {
        const { value: ev, done } = await reader.read();
        if (done) return;
        const arrival = nowUs();
        if (offsetUs === null) {
          const mapped = monotonicToEgressUs(Number(ev.timestampUs));
          offsetUs = Math.abs(arrival - mapped) < MONOTONIC_TOLERANCE_US ? 0 : arrival - mapped;
          if (offsetUs !== 0) log.warn(`video timestamps of ${track.sid ?? ''} are not on CLOCK_MONOTONIC; stamping by arrival [egress:${this.opts.egressId}]`);
        }
        const renderUs = monotonicToEgressUs(Number(ev.timestampUs)) + offsetUs;
        this.#delays.noteVideoLead(renderUs - arrival);
        const ptsUs = renderUs - this.#delays.videoUs;
        const f = ev.frame.type === VideoBufferType.I420 ? ev.frame : ev.frame.convert(VideoBufferType.I420);
        onFrame({ ptsUs, format: 'I420', width: f.width, height: f.height, data: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength) });
      }
    })().catch((err: unknown) => log.warn(`video reader of ${track.sid ?? ''} ended: ${(err as Error).message}`));
    return { sid: track.sid ?? '', ended, cancel: async () => {
      await reader.cancel().catch(() => undefined);
      await ended;
    } };
  }

  /** Reads decoded audio of `track` as 48 kHz stereo float32 chunks stamped on the egress clock. */
  readAudio(track: RemoteTrack, onChunk: (c: AudioChunkIn) => void): TrackReader {
    const reader = new AudioStream(track, { sampleRate: SDK_SAMPLE_RATE, numChannels: SDK_CHANNELS, frameSizeMs: AUDIO_FRAME_MS }).getReader();
    this.#delays.start();
    let nextUs: number | null = null;
    // The receive delay in use for this track: taken at its first chunk and at each re-anchoring
    // only. Moved while the track plays on, it would cut or pad its audio by a few ms (a click).
    let delayUs = 0;
    const ended = (async () => {
      for (;;) {
        const { value: fr, done } = await reader.read();
        if (done) return;
        const durUs = (fr.samplesPerChannel * 1e6) / fr.sampleRate;
        const byArrival = nowUs() - durUs;
        let start: number = nextUs ?? byArrival;
        if (nextUs === null || byArrival - start > AUDIO_GAP_US || start - byArrival > AUDIO_EARLY_US) {
          start = byArrival;
          delayUs = this.#delays.audioUs;
        }
        nextUs = start + durUs;
        onChunk({ ptsUs: start - delayUs, sampleRate: fr.sampleRate, channels: fr.channels, data: s16ToF32(fr.data) });
      }
    })().catch((err: unknown) => log.warn(`audio reader of ${track.sid ?? ''} ended: ${(err as Error).message}`));
    return { sid: track.sid ?? '', ended, cancel: async () => {
      await reader.cancel().catch(() => undefined);
      await ended;
    } };
  }
}
