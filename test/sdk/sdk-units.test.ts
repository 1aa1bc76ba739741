/**
 * SDK-source pieces without a room: request validation of participant / track composite (the
 * original's texts), what stays refused, and the media timeline's continuity rules (start at the
 * first media, black and silence in gaps, audio never backwards).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { AudioMixing, DirectFileOutput, EncodedFileOutput, RoomCompositeEgressRequest, EncodedFileType, MediaSource, ParticipantEgressRequest, StartEgressRequest, TrackCompositeEgressRequest, TrackEgressRequest } from '@livekit/protocol';
import { assertRunnable } from '../../main/egress/capabilities.js';
import { EgressError } from '../../main/contracts/errors.js';
import { parseConfig } from '../../main/config/index.js';
import { buildPipelinePlan, type EgressRequest } from '../../main/request/index.js';
import { MediaTransport } from '../../gst/media-transport.js';
import { MediaTimeline } from '../../main/sdk/media-timeline.js';
import { s16ToF32 } from '../../main/sdk/pcm.js';
import { AudioMixer } from '../../main/sdk/audio-mixer.js';
import { PassthroughVideoWriter } from '../../main/sdk/passthrough-writer.js';
import type { EncodedFrame } from '../../main/sdk/encoded-track.js';

const NOW = new Date(2022, 9, 4, 1, 13, 6, 789);
const config = parseConfig('tmp_dir: /tmp/egress-test\napi_key: k\napi_secret: s\nws_url: ws://127.0.0.1:7880\n');
const plan = (request: EgressRequest) => buildPipelinePlan({ egressId: 'EG_unit', request, roomName: 'room' }, config, NOW);
const rejects = (request: EgressRequest, message: string): void =>
  assert.throws(() => plan(request), (e: unknown) => e instanceof EgressError && e.message === message, message);

test('participant request: identity required; audio + video from the SDK source; names resolved later', () => {
  rejects({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'room', fileOutputs: [new EncodedFileOutput()] }) }, 'request has missing or invalid field: identity');
  rejects({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'room', identity: 'alice' }) }, 'request has missing or invalid field: output');
  const p = plan({
    case: 'participant',
    value: new ParticipantEgressRequest({ roomName: 'room', identity: 'alice', screenShare: true, fileOutputs: [new EncodedFileOutput({ filepath: 'p_{publisher_identity}_{room_name}' })] }),
  });
  assert.equal(p.requestType, 'participant');
  assert.equal(p.sourceKind, 'sdk');
  assert.deepEqual(p.source, { kind: 'participant', identity: 'alice', screenShare: true, roomName: 'room', token: '', wsUrl: 'ws://127.0.0.1:7880' });
  assert.equal(p.audioEnabled && p.videoEnabled, true);
  assert.equal(p.file?.storageFilepath, 'p_{publisher_identity}_room.mp4');
});

test('track composite request: one of the ids required; each id enables its kind', () => {
  rejects({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'room', fileOutputs: [new EncodedFileOutput()] }) }, 'request has missing or invalid field: audio_track_id or video_track_id');
  const a = plan({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'room', audioTrackId: 'TR_a', fileOutputs: [new EncodedFileOutput({ fileType: EncodedFileType.OGG })] }) });
  assert.equal(a.audioEnabled, true);
  assert.equal(a.videoEnabled, false);
  assert.equal(a.file?.fileType, 'ogg');
  const v = plan({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'room', videoTrackId: 'TR_v', output: { case: 'file', value: new EncodedFileOutput() } }) });
  assert.equal(v.videoEnabled, true);
  assert.equal(v.audioEnabled, false);
  assert.equal(v.file?.fileType, 'mp4');
});

test('track egress request: track_id and an output required; OGG named after the track; WebSocket output runnable', () => {
  const track = (f: ConstructorParameters<typeof TrackEgressRequest>[0]): EgressRequest => ({ case: 'track', value: new TrackEgressRequest({ roomName: 'room', ...f }) });
  rejects(track({ output: { case: 'file', value: new DirectFileOutput({ filepath: 'x' }) } }), 'request has missing or invalid field: track_id');
  rejects(track({ trackId: 'TR_x' }), 'request has missing or invalid field: output');
  const p = plan(track({ trackId: 'TR_x', output: { case: 'file', value: new DirectFileOutput({ filepath: 'dir/' }) } }));
  assert.equal(p.requestType, 'track');
  assert.equal(p.file?.fileType, 'ogg');
  assert.equal(p.encoding.audioCodec, 'opus');
  assert.equal(p.file?.storageFilepath, 'dir/TR_x-2022-10-04T011306.ogg');
  assert.equal(plan(track({ trackId: 'TR_x', output: { case: 'file', value: new DirectFileOutput({ filepath: '{track_id}_{track_source}' }) } })).file?.storageFilepath, 'TR_x_{track_source}.ogg');
  const ws = plan(track({ trackId: 'TR_x', output: { case: 'websocketUrl', value: 'ws://127.0.0.1:9/pcm' } }));
  assertRunnable(ws);
  assert.equal(ws.stream?.protocol, 'websocket');
  assert.equal(ws.encoding.rawAudio, true);
  assert.equal(ws.file, null);
  // v2 media is its own SDK source now (test/unit/media-source.test.ts); without outputs: `output`.
  rejects({ case: 'egress', value: new StartEgressRequest({ roomName: 'room', source: { case: 'media', value: new MediaSource({ video: { case: 'videoTrackId', value: 'TR_v' } }) } }) }, 'request has missing or invalid field: output');
});

function timeline(video: boolean, audio: boolean) {
  const v = new PassThrough();
  const a = new PassThrough();
  v.resume();
  a.resume();
  const transport = new MediaTransport({ video: video ? v : null, audio: audio ? a : null, framerate: 30, repeatAfterMs: 1e9 });
  const starts: number[] = [];
  const tl = new MediaTimeline({ transport, video: video ? { width: 64, height: 36 } : null, audio, onStart: (t) => starts.push(t) });
  return { transport, tl, starts };
}

const pcm = (frames: number): Buffer => s16ToF32(new Int16Array(frames * 2).fill(1000));

test('timeline: starts at the first media; black until a picture; audio overlap trimmed, never backwards; silence fills to the stop', () => {
  const { transport, tl, starts } = timeline(true, true);
  const t0 = 1e12;
  tl.pushAudio({ ptsUs: t0, sampleRate: 48000, channels: 2, data: pcm(480) });
  assert.deepEqual(starts, [t0]);
  assert.equal(transport.startUs, t0);
  // Black picture at the start (no video track yet).
  assert.equal(transport.stats.videoFramesWritten, 1);
  // A chunk overlapping the first by 5 ms keeps only its last 5 ms.
  tl.pushAudio({ ptsUs: t0 + 5000, sampleRate: 48000, channels: 2, data: pcm(480) });
  assert.equal(transport.stats.audioSamplesWritten, 480 + 240);
  // A chunk wholly in the past is dropped.
  tl.pushAudio({ ptsUs: t0 - 20_000, sampleRate: 48000, channels: 2, data: pcm(480) });
  assert.equal(transport.stats.audioSamplesWritten, 720);
  // Stop 1 s in: silence up to it (48000 frames in all), black picture at it.
  tl.fillTo(t0 + 1e6);
  assert.equal(transport.stats.audioSamplesWritten, 48000);
  assert.equal(transport.stats.videoFramesWritten, 2);
  tl.close();
  transport.abort();
});

test('hold at a lost room: nothing past it is written (media, silence); release lets media through again; a hold never released ends there', () => {
  const { transport, tl } = timeline(false, true);
  const t0 = 1e12;
  tl.pushAudio({ ptsUs: t0, sampleRate: 48000, channels: 2, data: pcm(4800) });
  assert.equal(transport.stats.audioSamplesWritten, 4800);
  // Lost 50 ms in: a chunk straddling it keeps its first 50 ms, one after it is not written, nor is silence.
  tl.hold(t0 + 150_000);
  transport.hold(t0 + 150_000);
  tl.pushAudio({ ptsUs: t0 + 100_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  assert.equal(transport.stats.audioSamplesWritten, 4800 + 2400);
  tl.pushAudio({ ptsUs: t0 + 300_000, sampleRate: 48000, channels: 2, data: pcm(480) });
  tl.fillTo(t0 + 2e6);
  assert.equal(transport.stats.audioSamplesWritten, 7200);
  // Back: what arrives now is written.
  tl.release();
  transport.release();
  tl.pushAudio({ ptsUs: t0 + 3e6, sampleRate: 48000, channels: 2, data: pcm(480) });
  assert.equal(transport.stats.audioSamplesWritten, 7200 + 480);
  // Lost again and never back: the stop at the loss keeps exactly up to it.
  transport.hold(t0 + 3.1e6);
  transport.setStop(t0 + 3.1e6);
  tl.fillTo(t0 + 3.1e6);
  // 90 ms of silence from the last chunk's end (3.01 s) up to the stop (3.1 s): 4320 frames.
  assert.equal(transport.stats.audioSamplesWritten, 7680 + 4320);
  tl.close();
  transport.abort();
});

test('defer while a signal reconnect is undecided: media waits; release writes all of it in order, hold writes only what came before the loss', () => {
  const { transport, tl } = timeline(false, true);
  const t0 = 1e12;
  tl.pushAudio({ ptsUs: t0, sampleRate: 48000, channels: 2, data: pcm(4800) });
  assert.equal(transport.stats.audioSamplesWritten, 4800);
  // Live through the reconnect: nothing is lost, only delayed.
  transport.defer();
  tl.pushAudio({ ptsUs: t0 + 100_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  tl.pushAudio({ ptsUs: t0 + 200_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  assert.equal(transport.stats.audioSamplesWritten, 4800);
  transport.release();
  assert.equal(transport.stats.audioSamplesWritten, 3 * 4800);
  // The source was gone: what waited past the loss (at 350 ms) is dropped; the 50 ms before it kept.
  transport.defer();
  tl.pushAudio({ ptsUs: t0 + 300_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  tl.pushAudio({ ptsUs: t0 + 400_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  transport.hold(t0 + 350_000);
  assert.equal(transport.stats.audioSamplesWritten, 3 * 4800 + 2400);
  // A stop decides too: nothing waits past it.
  transport.release();
  transport.defer();
  tl.pushAudio({ ptsUs: t0 + 500_000, sampleRate: 48000, channels: 2, data: pcm(4800) });
  transport.setStop(t0 + 600_000);
  assert.equal(transport.stats.audioSamplesWritten, 4 * 4800 + 2400);
  tl.close();
  transport.abort();
});

test('pcm: s16 → float32', () => {
  const f = s16ToF32(Int16Array.from([-32768, 0, 16384]));
  assert.deepEqual([f.readFloatLE(0), f.readFloatLE(4), f.readFloatLE(8)], [-1, 0, 0.5]);
});

test('audio-only room composite without layout or custom page → SDK source with its audio_mixing; with a layout → the page', () => {
  const rc = (f: ConstructorParameters<typeof RoomCompositeEgressRequest>[0]): EgressRequest => ({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'room', fileOutputs: [new EncodedFileOutput({ fileType: EncodedFileType.OGG })], ...f }) });
  const p = plan(rc({ audioOnly: true, audioMixing: AudioMixing.DUAL_CHANNEL_AGENT }));
  assert.equal(p.sourceKind, 'sdk');
  assert.deepEqual({ kind: p.source.kind, mixing: p.source.kind === 'room_audio' ? p.source.mixing : '' }, { kind: 'room_audio', mixing: 'dual_channel_agent' });
  assert.equal(plan(rc({ audioOnly: true, audioMixing: AudioMixing.DUAL_CHANNEL_ALTERNATE })).source.kind, 'room_audio');
  assert.equal(plan(rc({ audioOnly: true, layout: 'grid' })).source.kind, 'template');
});

test('mixer: inputs routed left / right / both, summed, handed on in order from the first audio', () => {
  const out: { ptsUs: number; data: Buffer }[] = [];
  const mixer = new AudioMixer((c) => out.push(c));
  mixer.addInput('a', 'left');
  mixer.addInput('b', 'right');
  mixer.addInput('c', 'both');
  const t0 = 1e12;
  const chunk = (ptsUs: number, l: number, r: number) => {
    const f = new Float32Array(480 * 2);
    for (let i = 0; i < 480; i++) {
      f[i * 2] = l;
      f[i * 2 + 1] = r;
    }
    return { ptsUs, sampleRate: 48000, channels: 2, data: Buffer.from(f.buffer) };
  };
  // The first audio is handed on at once (it is the start signal).
  mixer.push('a', chunk(t0, 0.2, 0.2));
  assert.equal(out.length, 1);
  mixer.push('a', chunk(t0 + 10_000, 0.2, 0.2));
  mixer.push('b', chunk(t0 + 10_000, 0.1, 0.3));
  mixer.push('c', chunk(t0 + 10_000, 0.05, 0.01));
  mixer.flushTo(t0 + 20_000);
  mixer.close();
  const all = Buffer.concat(out.map((o) => o.data));
  const f = new Float32Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
  assert.equal(out[0]?.ptsUs, t0);
  assert.equal(f.length, 960 * 2);
  const near = (x: number | undefined, want: number): boolean => Math.abs((x ?? NaN) - want) < 1e-6;
  assert.ok(near(f[0], 0.2) && near(f[1], 0), `first frame ${f[0]} ${f[1]}`);
  // Left: a's downmix + c's left; right: b's downmix + c's right.
  assert.ok(near(f[960], 0.25) && near(f[961], 0.21), `mixed frame ${f[960]} ${f[961]}`);
});

test('mixer: an input stamped back over itself is cut, not added on top of what it laid', () => {
  const out: { ptsUs: number; data: Buffer }[] = [];
  const mixer = new AudioMixer((c) => out.push(c));
  mixer.addInput('a', 'both');
  const t0 = 1e12;
  const chunk = (ptsUs: number, v: number) => ({ ptsUs, sampleRate: 48000, channels: 2, data: Buffer.from(new Float32Array(480 * 2).fill(v).buffer) });
  mixer.push('a', chunk(t0, 0.1));
  mixer.push('a', chunk(t0 + 10_000, 0.2));
  // re-anchored 6 ms back: its first 288 frames overlap the previous chunk
  mixer.push('a', chunk(t0 + 14_000, 0.3));
  mixer.flushTo(t0 + 30_000);
  mixer.close();
  const all = Buffer.concat(out.map((o) => o.data));
  const f = new Float32Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
  const at = (ms: number): number => f[Math.round((ms * 48000) / 1000) * 2] ?? NaN;
  assert.ok(Math.abs(at(15) - 0.2) < 1e-6, `15 ms: ${at(15)} (the earlier chunk alone)`);
  assert.ok(Math.abs(at(21) - 0.3) < 1e-6, `21 ms: ${at(21)}`);
  assert.ok(Math.abs(at(25) - 0) < 1e-6, `25 ms: ${at(25)} (the cut chunk ends at 24 ms)`);
});

test('passthrough writer: times only increase — a second frame at one RTP time is dropped, a keyframe there is kept a millisecond later', () => {
  const out = new PassThrough();
  out.resume();
  const w = new PassthroughVideoWriter(out, 'vp8', { onStart: () => undefined, reorderWindowMs: 0 });
  const frame = (rtpTimestamp: number, keyframe: boolean): EncodedFrame => ({ kind: 'video', keyframe, payloadType: 96, rtpTimestamp, arrivalUs: 0, width: 640, height: 360, data: Buffer.alloc(10) });
  w.push(frame(90_000, true));
  assert.equal(w.stats.lastPtsNs, 0n);
  w.push(frame(93_000, false));
  assert.equal(w.stats.lastPtsNs, 33_333_333n);
  // The same picture forwarded twice: not written.
  w.push(frame(93_000, false));
  assert.equal(w.stats.written, 2);
  assert.equal(w.stats.droppedDuplicates, 1);
  // A keyframe on the same RTP time (a layer switch): written 1 ms later; what follows keeps its spacing.
  w.push(frame(93_000, true));
  assert.equal(w.stats.lastPtsNs, 34_333_333n);
  w.push(frame(96_000, false));
  assert.equal(w.stats.lastPtsNs, 67_666_666n);
  assert.equal(w.stats.written, 4);
  // Less than a millisecond after the last (a layer switch with shifted stamps): a millisecond after
  // it, so a millisecond container never holds two frames at one time; the spacing after it holds.
  w.push(frame(96_030, false));
  assert.equal(w.stats.lastPtsNs, 68_666_666n);
  w.push(frame(96_040, true));
  assert.equal(w.stats.lastPtsNs, 69_666_666n);
  w.push(frame(99_040, false));
  assert.equal(w.stats.lastPtsNs, 103_000_000n);
  assert.equal(w.stats.written, 7);
});

test("passthrough writer: the SFU's blank keyframes (8x8) and what follows them are not written; a real keyframe resumes", () => {
  const out = new PassThrough();
  out.resume();
  const w = new PassthroughVideoWriter(out, 'vp8', { onStart: () => undefined, reorderWindowMs: 0 });
  const frame = (rtpTimestamp: number, keyframe: boolean, [width, height] = [640, 360]): EncodedFrame => ({ kind: 'video', keyframe, payloadType: 96, rtpTimestamp, arrivalUs: 0, width: keyframe ? width : 0, height: keyframe ? height : 0, data: Buffer.alloc(10) });
  // Filler before anything real (a track egress started on a muted track): not the start.
  w.push(frame(87_000, true, [8, 8]));
  assert.equal(w.started, false);
  w.push(frame(90_000, true));
  w.push(frame(93_000, false));
  w.push(frame(99_000, true, [8, 8]));
  w.push(frame(102_000, true, [8, 8]));
  w.push(frame(105_000, false));
  assert.equal(w.stats.written, 2);
  assert.equal(w.stats.droppedFiller, 4);
  w.push(frame(108_000, true));
  assert.equal(w.stats.written, 3);
  assert.equal(w.stats.lastPtsNs, 200_000_000n);
});

/** A writer whose output is read back as the sequence of frame names written (`f<rtp>`). */
function recordingWriter(reorderWindowMs: number): { w: PassthroughVideoWriter; push: (rtp: number, key?: boolean) => void; written: () => string[]; keyframeRequests: () => number } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  let requests = 0;
  const w = new PassthroughVideoWriter(out, 'vp8', { onStart: () => undefined, onKeyframeNeeded: () => requests++, reorderWindowMs });
  return {
    w,
    push: (rtp, key = false) => w.push({ kind: 'video', keyframe: key, payloadType: 96, rtpTimestamp: rtp >>> 0, arrivalUs: 0, width: 640, height: 360, data: Buffer.from(`<f${rtp >>> 0}>`) }),
    written: () => [...Buffer.concat(chunks).toString('latin1').matchAll(/<(f-?\d+)>/g)].map((m) => m[1] as string),
    keyframeRequests: () => requests,
  };
}

test('passthrough writer: a frame completed late (a retransmission) is put back in its place within the reorder window', () => {
  const r = recordingWriter(100); // 100 ms = 9000 ticks
  // The RTP clock wraps between the frames: unwrapped as one timeline.
  const t0 = 2 ** 32 - 6000;
  r.push(t0, true);
  r.push(t0 + 3000);
  r.push(t0 + 9000); // t0 + 6000 is late
  r.push(t0 + 6000);
  for (let k = 4; k <= 8; k++) r.push(t0 + k * 3000);
  assert.equal(r.w.stats.reordered, 1);
  // Written once 100 ms older than the newest frame: up to t0 + 12000 so far.
  assert.deepEqual(r.written(), [0, 3000, 6000, 9000, 12000, 15000].map((d) => `f${(t0 + d) >>> 0}`));
  r.w.close();
  assert.deepEqual(r.written(), [0, 3000, 6000, 9000, 12000, 15000, 18000, 21000, 24000].map((d) => `f${(t0 + d) >>> 0}`));
  assert.equal(r.w.stats.lastPtsNs, 266_666_666n);
  assert.deepEqual([r.w.stats.droppedLate, r.w.stats.droppedAwaitingKeyframe, r.keyframeRequests()], [0, 0, 0]);
});

test('passthrough writer: a frame later than the window is dropped with every delta after it until a keyframe, which is asked for', () => {
  const r = recordingWriter(100);
  r.push(0, true);
  for (let k = 1; k <= 6; k++) if (k !== 2) r.push(k * 3000);
  // Written so far: 0, 3000, 9000 (frame 6000 missing); 6000 arrives too late to go before 9000.
  assert.deepEqual(r.written(), ['f0', 'f3000', 'f9000']);
  r.push(6000);
  assert.equal(r.w.stats.droppedLate, 1);
  assert.equal(r.keyframeRequests(), 1);
  r.push(21000);
  r.push(24000);
  r.push(27000, true);
  r.push(30000);
  r.w.close();
  // 12000 … 24000 decode against the missing frame's successor chain: not written; the keyframe restarts it.
  assert.deepEqual(r.written(), ['f0', 'f3000', 'f9000', 'f27000', 'f30000']);
  assert.equal(r.w.stats.droppedAwaitingKeyframe, 5);
  assert.ok(r.keyframeRequests() >= 2, 'asked again while waiting');
  // A frame older than the first keyframe, overtaken by it, is simply before the recording.
  const q = recordingWriter(100);
  q.push(3000, true);
  q.push(0);
  q.w.close();
  assert.deepEqual(q.written(), ['f3000']);
  assert.deepEqual([q.w.stats.droppedBeforeKeyframe, q.w.stats.droppedLate, q.keyframeRequests()], [1, 0, 0]);
});

test('passthrough writer: within the window, a keyframe less than a millisecond from waiting frames replaces them (a layer switch); a delta frame there is dropped', () => {
  const r = recordingWriter(100);
  r.push(0, true);
  r.push(3000);
  r.push(6000);
  r.push(6000, true); // the new layer's keyframe on the same picture
  r.push(9030, true); // and another, shifted by a third of a millisecond…
  r.push(9000); // …from a frame of the old layer that came after it
  r.push(12000);
  r.w.close();
  assert.deepEqual(r.written(), ['f0', 'f3000', 'f6000', 'f9030', 'f12000']);
  assert.equal(r.w.stats.droppedDuplicates, 2);
  // Written a millisecond or more apart, in the publisher's spacing.
  assert.equal(r.w.stats.lastPtsNs, 133_333_333n);
});
