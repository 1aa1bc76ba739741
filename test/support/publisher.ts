/**
 * Synthetic LiveKit publishers on @livekit/rtc-node: a participant that joins a real livekit-server
 * room and publishes MEASURABLE media. Each publisher shows its own solid colour and flashes white,
 * and beeps its own sine tone, at the same instants: epoch + k·1000 ms (flash ~100 ms = 3 frames at
 * 30 fps, beep 100 ms with 2 ms fades, amplitude 0.5).
 *
 *   const p = await startPublisher({ wsUrl, apiKey, apiSecret, room: 'r', identity: 'alice',
 *     colour: [220, 40, 40], toneHz: 523, video: { codec: 'vp8' }, audio: true });
 *   p.trackSids.video; await p.unpublishVideo(); await p.muteAudio(true); await p.stop();
 *
 * Timing is exact at the source:
 * - video frames are captured with `VideoSource.captureFrame(frame, timestampUs)` where timestampUs is
 *   the frame's scheduled time on CLOCK_MONOTONIC (libwebrtc's rtc::TimeMicros clock), derived from the
 *   schedule epoch + j·1000/fps, never from loop counts;
 * - audio goes through an AudioSource with queueSize 0 (rtc-node passes 0 to the native source, which
 *   then delivers each 10 ms frame straight to WebRTC — no internal queue whose fill level would add a
 *   variable delay); frame k holds the samples of [epoch + 10k ms, +10 ms) and is pushed at that
 *   wall-clock instant, so sample n's send time is known to within the timer's jitter.
 *
 * All publishers of one process share one clock (performance.now()), so a shared `epochMs` makes
 * their flashes and beeps simultaneous; `epochMs` is on the Date.now() scale.
 */
import './rtc-quiet.js';
import { AccessToken } from 'livekit-server-sdk';
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  LocalVideoTrack,
  Room,
  TrackPublishOptions,
  TrackSource,
  VideoBufferType,
  VideoCodec,
  VideoFrame,
  VideoSource,
  dispose,
} from '@livekit/rtc-node';
import { LocalTrackMuteRequest } from '@livekit/rtc-ffi-bindings';

export type Rgb = readonly [number, number, number];

export interface PublisherVideoOptions {
  width?: number;
  height?: number;
  fps?: number;
  codec?: 'vp8' | 'vp9' | 'h264';
  /** Track source of the video (default camera). */
  source?: 'camera' | 'screen_share';
  /** Simulcast layers (LiveKit's default is on; off here by default to keep 4 publishers real-time on 2 cores). */
  simulcast?: boolean;
  maxBitrate?: number;
}

export interface PublisherOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  name?: string;
  colour: Rgb;
  toneHz: number;
  /** false: no video track. Default: 640x360 @ 30 fps VP8. */
  video?: PublisherVideoOptions | false;
  /** Publish the microphone track (default true). */
  audio?: boolean;
  /** Opus RED (default true, as LiveKit's). */
  red?: boolean;
  /** Opus DTX (default true, as LiveKit's). */
  dtx?: boolean;
  /** Stereo audio (default false: mono, as LiveKit's microphone default). Same tone on both channels. */
  stereo?: boolean;
  /** Schedule epoch on the Date.now() scale (default: the next whole second). */
  epochMs?: number;
  /** TrackPublishOptions.stream of both tracks (groups camera + mic for lip sync at subscribers); default unset, as LiveKit's. */
  stream?: string;
  /** Token participant kind, e.g. 'agent' (livekit-server-sdk AccessToken.kind). */
  kind?: string;
  attributes?: Record<string, string>;
  /** Flash length in ms (default 100) and beep length in ms (default 100). */
  flashMs?: number;
  beepMs?: number;
  /** Beep amplitude 0..1 (default 0.5). */
  amplitude?: number;
}

/** What a test drives: the same whether the publisher runs in this process or in its own (remote-publisher.ts). */
export interface PublisherHandle {
  readonly identity: string;
  readonly epochMs: number;
  /** Sids of the currently published tracks. */
  readonly trackSids: { video?: string; audio?: string };
  readonly connected: boolean;
  /** Statistics of the media loops (late frames etc.), for diagnosing a starved machine. */
  readonly stats: PublisherStats;
  publishVideo(): Promise<string>;
  unpublishVideo(): Promise<void>;
  publishAudio(): Promise<string>;
  unpublishAudio(): Promise<void>;
  muteAudio(muted: boolean): Promise<void>;
  muteVideo(muted: boolean): Promise<void>;
  /** Leaves the room (tracks are unpublished by the server); media loops stop. */
  disconnect(): Promise<void>;
  /** Joins again with the same identity and republishes the tracks that were published at disconnect(). */
  reconnect(): Promise<void>;
  /** Disconnects and releases everything. Idempotent. */
  stop(): Promise<void>;
}

export interface Publisher extends PublisherHandle {
  readonly room: Room;
}

/** A running media loop: set `stop` and await `done`. */
interface MediaLoop {
  stop: boolean;
  readonly done: Promise<void>;
}

export interface PublisherStats {
  videoFrames: number;
  /** Frames captured more than 5 ms after their scheduled time / skipped because later than one frame. */
  videoLate: number;
  videoSkipped: number;
  audioFrames: number;
  /** Max lateness (ms) of an audio / video capture call relative to its scheduled time. */
  audioMaxLateMs: number;
  videoMaxLateMs: number;
}

/** BT.601 limited-range YUV of an RGB colour (what libwebrtc's encoders and ffmpeg's decoders assume for I420). */
export function rgbToYuv([r, g, b]: Rgb): [number, number, number] {
  const y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255;
  const u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255;
  const v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255;
  const c = (x: number): number => Math.max(0, Math.min(255, Math.round(x)));
  return [c(y), c(u), c(v)];
}

/** A solid I420 frame buffer. */
export function solidI420(width: number, height: number, rgb: Rgb): Uint8Array {
  const [y, u, v] = rgbToYuv(rgb);
  const ySize = width * height;
  const cw = Math.ceil(width / 2);
  const ch = Math.ceil(height / 2);
  const buf = new Uint8Array(ySize + 2 * cw * ch);
  buf.fill(y, 0, ySize);
  buf.fill(u, ySize, ySize + cw * ch);
  buf.fill(v, ySize + cw * ch);
  return buf;
}

const SAMPLE_RATE = 48000;
const FRAME_MS = 10;
const SAMPLES_PER_FRAME = (SAMPLE_RATE * FRAME_MS) / 1000;

/** Monotonic ms on the Date.now() scale (shared by every publisher of the process). */
const perfToWall = performance.timeOrigin;
const wallNow = (): number => perfToWall + performance.now();
/** CLOCK_MONOTONIC µs of a wall-scale ms instant (process.hrtime is CLOCK_MONOTONIC, as rtc::TimeMicros). */
const hrMinusPerfMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const monoUs = (wallMs: number): bigint => BigInt(Math.round((wallMs - perfToWall + hrMinusPerfMs) * 1000));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** The sample value at wall-clock time t (ms) for a schedule. */
function beepSample(tMs: number, epochMs: number, toneHz: number, beepMs: number, amp: number): number {
  const since = tMs - epochMs;
  if (since < 0) return 0;
  const inBeep = since % 1000;
  if (inBeep >= beepMs) return 0;
  const fade = 2;
  let g = amp;
  if (inBeep < fade) g *= inBeep / fade;
  else if (inBeep > beepMs - fade) g *= (beepMs - inBeep) / fade;
  return g * Math.sin((2 * Math.PI * toneHz * inBeep) / 1000);
}

async function mintToken(o: PublisherOptions): Promise<string> {
  const at = new AccessToken(o.apiKey, o.apiSecret, { identity: o.identity, name: o.name ?? o.identity, ttl: '2h', ...(o.attributes ? { attributes: o.attributes } : {}) });
  at.addGrant({ roomJoin: true, room: o.room, canPublish: true, canSubscribe: true });
  if (o.kind) at.kind = o.kind;
  return at.toJwt();
}

interface FfiLike {
  request(req: unknown): unknown;
}

/** rtc-node 1.1.0 has no mute method on local tracks; the FFI has LocalTrackMuteRequest. */
function muteTrack(track: LocalVideoTrack | LocalAudioTrack, mute: boolean): void {
  const ffi = (globalThis as unknown as { _ffiClientInstance?: FfiLike })._ffiClientInstance;
  if (!ffi) throw new Error('rtc-node FFI client not initialised');
  ffi.request({ message: { case: 'localTrackMute', value: new LocalTrackMuteRequest({ trackHandle: track.ffi_handle.handle, mute }) } });
}

export async function startPublisher(opts: PublisherOptions): Promise<Publisher> {
  const video = opts.video === false ? false : { width: 640, height: 360, fps: 30, codec: 'vp8' as const, simulcast: false, ...(opts.video ?? {}) };
  const wantAudio = opts.audio ?? true;
  const epochMs = opts.epochMs ?? Math.ceil(Date.now() / 1000) * 1000;
  const flashMs = opts.flashMs ?? 100;
  const beepMs = opts.beepMs ?? 100;
  const amp = opts.amplitude ?? 0.5;
  const channels = opts.stereo ? 2 : 1;
  const stats: PublisherStats = { videoFrames: 0, videoLate: 0, videoSkipped: 0, audioFrames: 0, audioMaxLateMs: 0, videoMaxLateMs: 0 };

  // Pre-built frames, reused for every capture (captureFrame copies synchronously).
  const colourFrame = video ? new VideoFrame(solidI420(video.width, video.height, opts.colour), video.width, video.height, VideoBufferType.I420) : undefined;
  const whiteFrame = video ? new VideoFrame(solidI420(video.width, video.height, [255, 255, 255]), video.width, video.height, VideoBufferType.I420) : undefined;
  // One second of audio (the schedule repeats every second): frame k of a second = samples [k·480, k·480+480).
  const second = new Int16Array(SAMPLE_RATE * channels);
  for (let n = 0; n < SAMPLE_RATE; n++) {
    const s = Math.round(beepSample(epochMs + (n * 1000) / SAMPLE_RATE, epochMs, opts.toneHz, beepMs, amp) * 32767);
    for (let c = 0; c < channels; c++) second[n * channels + c] = s;
  }
  // rtc-node passes `data.buffer` to the FFI and ignores byteOffset: each frame needs its own
  // ArrayBuffer, so the second is split into 100 separate 10 ms arrays (pre-built, reused).
  const slots: Int16Array[] = [];
  for (let k = 0; k < 100; k++) slots.push(second.slice(k * SAMPLES_PER_FRAME * channels, (k + 1) * SAMPLES_PER_FRAME * channels));
  const silence = new Int16Array(SAMPLES_PER_FRAME * channels);

  let room = new Room();
  let connected = false;
  let stopped = false;
  const sids: { video?: string; audio?: string } = {};
  let vTrack: LocalVideoTrack | undefined;
  let vSource: VideoSource | undefined;
  let aTrack: LocalAudioTrack | undefined;
  let aSource: AudioSource | undefined;
  let vLoop: MediaLoop | undefined;
  let aLoop: MediaLoop | undefined;
  let audioMuted = false;
  let videoMuted = false;

  const runVideo = (source: VideoSource): { stop: boolean; done: Promise<void> } => {
    if (!video || !colourFrame || !whiteFrame) throw new Error('video disabled');
    const period = 1000 / video.fps;
    const ctl = { stop: false, done: Promise.resolve() };
    ctl.done = (async () => {
      let j = Math.ceil((wallNow() - epochMs) / period);
      while (!ctl.stop) {
        const t = epochMs + j * period;
        const wait = t - wallNow();
        if (wait > 0) await sleep(wait);
        if (ctl.stop) break;
        const late = wallNow() - t;
        if (late > period) {
          // Starved: skip to the current frame slot rather than sending a burst.
          const skip = Math.floor(late / period);
          stats.videoSkipped += skip;
          j += skip;
          continue;
        }
        if (late > 5) stats.videoLate++;
        stats.videoMaxLateMs = Math.max(stats.videoMaxLateMs, late);
        const since = t - epochMs;
        const flash = since >= 0 && since % 1000 < flashMs - 1e-6;
        try {
          source.captureFrame(flash ? whiteFrame : colourFrame, monoUs(t));
        } catch {
          break; // source closed
        }
        stats.videoFrames++;
        j++;
      }
    })();
    return ctl;
  };

  const runAudio = (source: AudioSource): { stop: boolean; done: Promise<void> } => {
    const ctl = { stop: false, done: Promise.resolve() };
    ctl.done = (async () => {
      // Frame k covers [epoch + 10k, epoch + 10k + 10) ms and is pushed at its start.
      let k = Math.ceil((wallNow() - epochMs) / FRAME_MS);
      while (!ctl.stop) {
        const t = epochMs + k * FRAME_MS;
        const wait = t - wallNow();
        if (wait > 0) await sleep(wait);
        if (ctl.stop) break;
        const late = wallNow() - t;
        stats.audioMaxLateMs = Math.max(stats.audioMaxLateMs, late);
        if (late > 200) {
          // Starved far behind: resynchronise (a gap) instead of pushing a long burst.
          k = Math.ceil((wallNow() - epochMs) / FRAME_MS);
          continue;
        }
        const idx = ((k % 100) + 100) % 100;
        const data = audioMuted ? silence : (slots[idx] as Int16Array);
        try {
          await source.captureFrame(new AudioFrame(data, SAMPLE_RATE, channels, SAMPLES_PER_FRAME));
        } catch {
          break;
        }
        stats.audioFrames++;
        k++;
      }
    })();
    return ctl;
  };

  const publishVideo = async (): Promise<string> => {
    if (!video) throw new Error('publisher has video: false');
    if (vTrack && sids.video) return sids.video;
    const lp = room.localParticipant;
    if (!lp) throw new Error('not connected');
    vSource = new VideoSource(video.width, video.height);
    vTrack = LocalVideoTrack.createVideoTrack(`${opts.identity}-camera`, vSource);
    vLoop = runVideo(vSource);
    const pub = await lp.publishTrack(
      vTrack,
      new TrackPublishOptions({
        source: video.source === 'screen_share' ? TrackSource.SOURCE_SCREENSHARE : TrackSource.SOURCE_CAMERA,
        videoCodec: video.codec === 'h264' ? VideoCodec.H264 : video.codec === 'vp9' ? VideoCodec.VP9 : VideoCodec.VP8,
        simulcast: video.simulcast,
        ...(opts.stream ? { stream: opts.stream } : {}),
        videoEncoding: { maxBitrate: BigInt(video.maxBitrate ?? 1_000_000), maxFramerate: video.fps },
      }),
    );
    sids.video = pub.sid;
    if (videoMuted) muteTrack(vTrack, true);
    return pub.sid ?? '';
  };

  /** Stops a track's media loop, unpublishes it and frees its track and source. */
  const release = async (loop: MediaLoop | undefined, sid: string | undefined, track: { close(stopOnMute: boolean): Promise<void> } | undefined, source: { close(): Promise<void> } | undefined): Promise<void> => {
    if (loop) {
      loop.stop = true;
      await loop.done;
    }
    if (sid && connected) await room.localParticipant?.unpublishTrack(sid, true).catch(() => undefined);
    await track?.close(false).catch(() => undefined);
    await source?.close().catch(() => undefined);
  };

  const unpublishVideo = async (): Promise<void> => {
    const [loop, sid, track, source] = [vLoop, sids.video, vTrack, vSource];
    [vLoop, sids.video, vTrack, vSource] = [undefined, undefined, undefined, undefined];
    await release(loop, sid, track, source);
  };

  const publishAudio = async (): Promise<string> => {
    if (aTrack && sids.audio) return sids.audio;
    const lp = room.localParticipant;
    if (!lp) throw new Error('not connected');
    aSource = new AudioSource(SAMPLE_RATE, channels, 0);
    aTrack = LocalAudioTrack.createAudioTrack(`${opts.identity}-microphone`, aSource);
    aLoop = runAudio(aSource);
    const pub = await lp.publishTrack(aTrack, new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE, red: opts.red ?? true, dtx: opts.dtx ?? true, ...(opts.stream ? { stream: opts.stream } : {}) }));
    sids.audio = pub.sid;
    if (audioMuted) muteTrack(aTrack, true);
    return pub.sid ?? '';
  };

  const unpublishAudio = async (): Promise<void> => {
    const [loop, sid, track, source] = [aLoop, sids.audio, aTrack, aSource];
    [aLoop, sids.audio, aTrack, aSource] = [undefined, undefined, undefined, undefined];
    await release(loop, sid, track, source);
  };

  const connect = async (): Promise<void> => {
    room = new Room();
    await room.connect(opts.wsUrl, await mintToken(opts), { autoSubscribe: false, dynacast: false });
    connected = true;
  };

  let republish = { video: !!video, audio: wantAudio };
  const disconnect = async (): Promise<void> => {
    if (!connected) return;
    republish = { video: !!sids.video, audio: !!sids.audio };
    // Stop the loops first so no capture races the teardown.
    await Promise.all([unpublishVideoLocal(), unpublishAudioLocal()]);
    connected = false;
    await room.disconnect().catch(() => undefined);
  };
  // Local teardown only: the server unpublishes the tracks of a participant that leaves.
  const unpublishVideoLocal = async (): Promise<void> => {
    const wasConnected = connected;
    connected = false;
    await unpublishVideo();
    connected = wasConnected;
  };
  const unpublishAudioLocal = async (): Promise<void> => {
    const wasConnected = connected;
    connected = false;
    await unpublishAudio();
    connected = wasConnected;
  };

  const reconnect = async (): Promise<void> => {
    if (stopped) throw new Error('publisher stopped');
    if (connected) await disconnect();
    await connect();
    if (republish.video && video) await publishVideo();
    if (republish.audio) await publishAudio();
  };

  await connect();
  try {
    if (video) await publishVideo();
    if (wantAudio) await publishAudio();
  } catch (err) {
    await disconnect();
    throw err;
  }

  return {
    identity: opts.identity,
    epochMs,
    get trackSids() {
      return { ...sids };
    },
    get room() {
      return room;
    },
    get connected() {
      return connected;
    },
    stats,
    publishVideo,
    unpublishVideo,
    publishAudio,
    unpublishAudio,
    muteAudio: async (m: boolean) => {
      audioMuted = m;
      if (aTrack) muteTrack(aTrack, m);
    },
    muteVideo: async (m: boolean) => {
      videoMuted = m;
      if (vTrack) muteTrack(vTrack, m);
    },
    disconnect,
    reconnect,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await disconnect();
    },
  };
}

/** Stops publishers and releases rtc-node's FFI so the process can exit (call once, at the end of a test file). */
export async function stopAll(pubs: Iterable<PublisherHandle>, disposeFfi = false): Promise<void> {
  await Promise.all([...pubs].map((p) => p.stop()));
  if (disposeFfi) await dispose();
}

export { dispose as disposeRtc };
