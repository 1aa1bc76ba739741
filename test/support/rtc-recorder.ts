/**
 * A plain rtc-node SUBSCRIBER that records one participant's audio + video to a small MKV — the
 * reference recording used to check the synthetic publishers at the source (publisher.ts), so later
 * egress failures can be blamed on the egress.
 *
 *   const rec = await startRtcRecorder({ wsUrl, apiKey, apiSecret, room, participant: 'alice', path: '/tmp/a.mkv' });
 *   …
 *   const info = await rec.stop();   // { path, videoFrames, audioFrames, … }
 *
 * Decoded I420 frames and PCM are written as GDP packets (gst/gdp.ts) into gst-launch-1.0 (video
 * x264 ultrafast, audio kept as raw PCM) → matroskamux. Every buffer's PTS comes from the frame:
 * - video: `VideoFrameEvent.timestampUs` (libwebrtc's render time on CLOCK_MONOTONIC µs — the
 *   jitter-buffered, A/V-synchronised time at which the frame is due); if it is not on that clock,
 *   it is offset once onto it by the first frame's arrival;
 * - audio: rtc-node's AudioFrame carries no timestamp, so its time is its arrival on
 *   CLOCK_MONOTONIC (the 10 ms chunk ends when it arrives); consecutive chunks are laid end to end
 *   while that stays within 20 ms of the arrival time, and re-anchored on arrival otherwise.
 * PTS 0 is the recorder's start.
 */
import './rtc-quiet.js';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import {
  AudioStream,
  Room,
  RoomEvent,
  TrackKind,
  VideoBufferType,
  VideoStream,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
} from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';
import { gdpBufferHeader, gdpCaps, gdpStreamStart, gdpTimeSegment } from '../../gst/gdp.js';

export interface RtcRecorderOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  /** Identity of the participant to record. */
  participant: string;
  /** Output file (.mkv). */
  path: string;
  /** Output picture size (frames are scaled to it). Default 640x360. */
  width?: number;
  height?: number;
  /** Audio channels to decode (default 2). */
  channels?: number;
  identity?: string;
}

export interface RtcRecorderResult {
  path: string;
  videoFrames: number;
  audioFrames: number;
  /** Audio re-anchors (arrival drifted > 20 ms from the laid-end-to-end timeline). */
  audioResyncs: number;
  /** How the video timestamps were read: 'monotonic' (used as is) or 'offset' (mapped by first arrival). */
  videoClock: 'monotonic' | 'offset' | 'none';
  /** Median of (arrival − frame timestamp) of video frames, ms (how far behind its due time a frame arrived). */
  videoArrivalLagMs: number;
  gstOutput: string;
}

export interface RtcRecorder {
  readonly room: Room;
  /** Resolves when both (or the available) tracks of the participant are being recorded. */
  readonly subscribed: Promise<void>;
  stop(): Promise<RtcRecorderResult>;
}

const monoUs = (): bigint => process.hrtime.bigint() / 1000n;

export async function startRtcRecorder(opts: RtcRecorderOptions): Promise<RtcRecorder> {
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const channels = opts.channels ?? 2;
  const rate = 48000;
  const t0Us = monoUs();

  const pipeline = [
    'matroskamux name=mux ! filesink', `location=${opts.path}`,
    'fdsrc fd=3 blocksize=1048576 ! gdpdepay ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=60 ! videoconvert ! videoscale',
    `! video/x-raw,format=I420,width=${width},height=${height},pixel-aspect-ratio=1/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500`,
    '! h264parse ! queue ! mux.',
    'fdsrc fd=4 blocksize=65536 ! gdpdepay ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=500 ! audioconvert ! audio/x-raw,format=S16LE ! queue ! mux.',
  ].join(' ');
  const gst: ChildProcess = spawn('gst-launch-1.0', ['-e', '-q', ...pipeline.split(' ')], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  let gstOut = '';
  gst.stdout?.on('data', (d: Buffer) => (gstOut = (gstOut + d.toString()).slice(-20000)));
  gst.stderr?.on('data', (d: Buffer) => (gstOut = (gstOut + d.toString()).slice(-20000)));
  const gstExit = new Promise<void>((r) => gst.once('exit', () => r()));
  const vOut = gst.stdio[3] as Writable;
  const aOut = gst.stdio[4] as Writable;
  vOut.on('error', () => undefined);
  aOut.on('error', () => undefined);
  vOut.write(gdpStreamStart('rtc-recorder-video'));
  aOut.write(gdpStreamStart('rtc-recorder-audio'));

  const res: RtcRecorderResult = { path: opts.path, videoFrames: 0, audioFrames: 0, audioResyncs: 0, videoClock: 'none', videoArrivalLagMs: NaN, gstOutput: '' };
  const lags: number[] = [];
  let stopping = false;
  const readers: Promise<void>[] = [];
  const readerHandles: { cancel(): Promise<void> }[] = [];

  const recordVideo = (track: RemoteTrack): void => {
    const stream = new VideoStream(track);
    readers.push(
      (async () => {
        let caps = '';
        let offsetUs: bigint | undefined;
        let lastPts = -1n;
        const reader = stream.getReader();
        readerHandles.push(reader);
        for (;;) {
          const { value: ev, done } = await reader.read();
          if (done || stopping) break;
          const arrival = monoUs();
          if (offsetUs === undefined) {
            const d = arrival - ev.timestampUs;
            const monotonic = d > -5_000_000n && d < 5_000_000n;
            offsetUs = monotonic ? 0n : d;
            res.videoClock = monotonic ? 'monotonic' : 'offset';
          }
          const tsUs = ev.timestampUs + offsetUs;
          lags.push(Number(arrival - tsUs) / 1000);
          const f = ev.frame.type === VideoBufferType.I420 ? ev.frame : ev.frame.convert(VideoBufferType.I420);
          const c = `video/x-raw, format=(string)I420, width=(int)${f.width}, height=(int)${f.height}, framerate=(fraction)0/1, pixel-aspect-ratio=(fraction)1/1`;
          if (c !== caps) {
            vOut.write(gdpCaps(c));
            if (caps === '') vOut.write(gdpTimeSegment());
            caps = c;
          }
          let pts = (tsUs - t0Us) * 1000n;
          if (pts < 0n) continue;
          if (pts <= lastPts) pts = lastPts + 1000n;
          lastPts = pts;
          vOut.write(gdpBufferHeader(f.data.length, pts, 33_333_333n));
          vOut.write(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
          res.videoFrames++;
        }
      })().catch(() => undefined),
    );
  };

  const recordAudio = (track: RemoteTrack): void => {
    const stream = new AudioStream(track, { sampleRate: rate, numChannels: channels });
    readers.push(
      (async () => {
        aOut.write(gdpCaps(`audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)${rate}, channels=(int)${channels}${channels === 2 ? ', channel-mask=(bitmask)0x3' : ''}`));
        aOut.write(gdpTimeSegment());
        let nextNs: bigint | undefined;
        const reader = stream.getReader();
        readerHandles.push(reader);
        for (;;) {
          const { value: fr, done } = await reader.read();
          if (done || stopping) break;
          const arrivalNs = (monoUs() - t0Us) * 1000n;
          const durNs = (BigInt(fr.samplesPerChannel) * 1_000_000_000n) / BigInt(rate);
          const startByArrival = arrivalNs - durNs;
          let start = nextNs ?? startByArrival;
          if (start - startByArrival > 20_000_000n || startByArrival - start > 20_000_000n) {
            if (nextNs !== undefined) res.audioResyncs++;
            start = startByArrival;
          }
          nextNs = start + durNs;
          if (start < 0n) continue;
          const bytes = Buffer.from(fr.data.buffer, fr.data.byteOffset, fr.data.byteLength);
          aOut.write(gdpBufferHeader(bytes.length, start, durNs));
          aOut.write(bytes);
          res.audioFrames++;
        }
      })().catch(() => undefined),
    );
  };

  const room = new Room();
  const want = new Set<string>();
  let resolveSub!: () => void;
  const subscribed = new Promise<void>((r) => (resolveSub = r));
  const seen = new Set<string>();
  const onTrack = (track: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant): void => {
    if (p.identity !== opts.participant || seen.has(pub.sid ?? '')) return;
    seen.add(pub.sid ?? '');
    if (track.kind === TrackKind.KIND_VIDEO) {
      if (want.has('video')) return;
      want.add('video');
      recordVideo(track);
    } else if (track.kind === TrackKind.KIND_AUDIO) {
      if (want.has('audio')) return;
      want.add('audio');
      recordAudio(track);
    }
    if (want.has('video') && want.has('audio')) resolveSub();
  };
  room.on(RoomEvent.TrackSubscribed, onTrack);
  const at = new AccessToken(opts.apiKey, opts.apiSecret, { identity: opts.identity ?? `rtc-recorder-${opts.participant}`, ttl: '2h' });
  at.addGrant({ roomJoin: true, room: opts.room, canPublish: false, canSubscribe: true, hidden: true });
  await room.connect(opts.wsUrl, await at.toJwt(), { autoSubscribe: true, dynacast: false });

  return {
    room,
    subscribed,
    stop: async () => {
      stopping = true;
      await room.disconnect().catch(() => undefined);
      for (const r of readerHandles) await r.cancel().catch(() => undefined);
      await Promise.race([Promise.all(readers), new Promise((r) => setTimeout(r, 2000))]);
      vOut.end();
      aOut.end();
      const killer = setTimeout(() => gst.kill('SIGKILL'), 15000);
      await gstExit;
      clearTimeout(killer);
      const sorted = lags.sort((a, b) => a - b);
      res.videoArrivalLagMs = sorted.length ? (sorted[Math.floor(sorted.length / 2)] as number) : NaN;
      res.gstOutput = gstOut;
      if (gst.exitCode !== 0) throw new Error(`gst-launch exited ${gst.exitCode ?? gst.signalCode}: ${gstOut.slice(-2000)}`);
      return res;
    },
  };
}
