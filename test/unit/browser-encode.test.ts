/**
 * The in-browser encode path's parts that need no browser: the chooser (which path a request takes
 * on which machine, and that outputs the page's H.264 cannot make fall back to x264), the codec
 * string, the Annex B checks, the ingest's validation of encoded video (a page is untrusted), and
 * the transport's keyframe rules (the file starts, resumes and goes on after a drop on a keyframe).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { WebSocket } from 'ws';
import { EncodedFileOutput, EncodedFileType, EncodingOptionsPreset, ImageOutput, SegmentedFileOutput, WebEgressRequest } from '@livekit/protocol';
import type { PartialMessage } from '@bufbuild/protobuf';
import { parseConfig } from '../../main/config/index.js';
import { buildPipelinePlan } from '../../main/request/index.js';
import { avcCodecString, chooseVideoPath, pageEncodeOptions } from '../../main/egress/video-path.js';
import { checkH264AccessUnit, spsProfile } from '../../gst/h264-annexb.js';
import { CaptureIngest, type CapturedEncodedVideo } from '../../main/capture/capture-ingest.js';
import { MediaTransport } from '../../gst/media-transport.js';
import { GDP_HEADER_LENGTH } from '../../gst/gdp.js';
import { buildLaunchArgs } from '../../gst/output-pipeline.js';
import { setLogLevel } from '../../main/log.js';

setLogLevel(false);

const config = parseConfig('tmp_dir: /tmp/egress-test\n');
function plan(fields: PartialMessage<WebEgressRequest>) {
  const request = new WebEgressRequest({ url: 'https://example.com/page', fileOutputs: [new EncodedFileOutput({ filepath: '/tmp/x/' })], ...fields });
  return buildPipelinePlan({ egressId: 'EG_test', request: { case: 'web', value: request } }, config, new Date());
}
const p1080 = { options: { case: 'preset' as const, value: EncodingOptionsPreset.H264_1080P_30 } };
const p720 = { options: { case: 'preset' as const, value: EncodingOptionsPreset.H264_720P_30 } };

test('chooser: auto keeps x264 where the raw path runs in real time and encodes in the page where it cannot; config forces either; outputs the page cannot make fall back to x264', () => {
  assert.equal(chooseVideoPath(plan(p720), 'auto', true, 2).path, 'x264', '720p30 on 2 cores: raw path');
  assert.equal(chooseVideoPath(plan(p1080), 'auto', true, 2).path, 'browser', '1080p30 on 2 cores: in the page');
  assert.equal(chooseVideoPath(plan(p1080), 'auto', true, 4).path, 'x264', '1080p30 on 4 cores: raw path');
  assert.equal(chooseVideoPath(plan(p1080), 'x264', true, 2).path, 'x264');
  assert.equal(chooseVideoPath(plan(p720), 'browser', true, 8).path, 'browser');
  assert.equal(chooseVideoPath(plan(p1080), 'browser', false, 2).path, 'x264', 'a host that cannot encode in the page');
  const images = plan({ ...p1080, imageOutputs: [new ImageOutput({ captureInterval: 5, filenamePrefix: '/tmp/x/img' })] });
  const withImages = chooseVideoPath(images, 'browser', true, 2);
  assert.equal(withImages.path, 'x264');
  assert.match(withImages.reason, /decoded frames/);
  const hls = plan({ ...p1080, fileOutputs: [], segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: '/tmp/x/seg' })] });
  assert.equal(chooseVideoPath(hls, 'auto', true, 2).path, 'x264');
  const audioOnly = plan({ ...p1080, audioOnly: true });
  assert.equal(chooseVideoPath(audioOnly, 'browser', true, 2).path, 'x264');
  const ogg = plan({ ...p1080, fileOutputs: [new EncodedFileOutput({ filepath: '/tmp/x/a.ogg', fileType: EncodedFileType.OGG })], audioOnly: true });
  assert.equal(chooseVideoPath(ogg, 'browser', true, 2).path, 'x264');
  // The key is validated like every other.
  assert.throws(() => parseConfig('video_encode_path: gpu\n'));
  assert.equal(parseConfig('video_encode_path: browser\n').video_encode_path, 'browser');
  assert.equal(config.video_encode_path, 'auto');
});

test('codec string: the request profile at the lowest level that fits; encoder settings from the request', () => {
  assert.equal(avcCodecString({ width: 1920, height: 1080, framerate: 30, videoProfile: 'main' }), 'avc1.4d0028');
  assert.equal(avcCodecString({ width: 1920, height: 1080, framerate: 60, videoProfile: 'high' }), 'avc1.64002a');
  assert.equal(avcCodecString({ width: 1280, height: 720, framerate: 30, videoProfile: 'baseline' }), 'avc1.42e01f');
  const e = pageEncodeOptions(plan(p1080).encoding);
  assert.equal(e.bitrate, 4_500_000);
  assert.equal(e.keyFrameInterval, 120, 'no interval requested: every 4 s');
  assert.equal(pageEncodeOptions({ ...plan(p1080).encoding, keyFrameIntervalS: 2 }).keyFrameInterval, 60);
});

const SPS = Buffer.from([0, 0, 0, 1, 0x67, 0x4d, 0x4c, 0x28, 0x8c]);
const PPS = Buffer.from([0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
const IDR = Buffer.from([0, 0, 0, 1, 0x65, 0xb8, 0x00, 0x04]);
const P = Buffer.from([0, 0, 0, 1, 0x41, 0x9a, 0x00]);
const KEY = Buffer.concat([SPS, PPS, IDR]);

test('Annex B checks: keyframes carry SPS+PPS+IDR, other frames a slice; the SPS names its profile', () => {
  assert.equal(checkH264AccessUnit(KEY, true), null);
  assert.equal(checkH264AccessUnit(P, false), null);
  assert.match(String(checkH264AccessUnit(IDR, true)), /SPS/);
  assert.match(String(checkH264AccessUnit(P, true)), /SPS/);
  assert.match(String(checkH264AccessUnit(SPS, false)), /slice/);
  assert.match(String(checkH264AccessUnit(Buffer.from([1, 2, 3, 4, 5]), false)), /Annex B/);
  assert.match(String(checkH264AccessUnit(Buffer.from([0, 0, 1, 0xe5]), false)), /Annex B/, 'forbidden_zero_bit');
  assert.deepEqual(spsProfile(KEY), { profileIdc: 77, constraints: 0x4c, levelIdc: 40, name: 'Main' });
  assert.equal(spsProfile(P), null);
});

function encodedMessage(au: Buffer, o: { key?: boolean; flags?: number; codec?: number; width?: number; ptsUs?: number } = {}): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt8(3, 0);
  h.writeUInt8(o.codec ?? 1, 1);
  h.writeUInt8(o.flags ?? (o.key ? 1 : 0), 2);
  h.writeUInt32LE(o.width ?? 1920, 4);
  h.writeUInt32LE(1080, 8);
  h.writeUInt8(1, 12);
  h.writeDoubleLE(o.ptsUs ?? 1000, 16);
  return Buffer.concat([h, au]);
}

test('capture socket: encoded video is checked like the rest (codec, flags, size, Annex B, keyframe parameter sets); valid access units and keyframe requests go through', async () => {
  const ingest = new CaptureIngest(1);
  const url = await ingest.listen();
  const got: CapturedEncodedVideo[] = [];
  ingest.on('encoded', (v) => got.push(v));
  const ws = await new Promise<WebSocket>((resolve, reject) => {
    const s = new WebSocket(url, { perMessageDeflate: false });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
  const texts: string[] = [];
  ws.on('message', (d, isBinary) => {
    if (!isBinary) texts.push(String(d));
  });
  try {
    const bad = [
      encodedMessage(KEY, { key: true, codec: 2 }),
      encodedMessage(KEY, { flags: 4 }),
      encodedMessage(KEY, { key: true, width: 0 }),
      encodedMessage(KEY, { key: true, width: 100_000 }),
      encodedMessage(Buffer.alloc(0)),
      encodedMessage(Buffer.from('garbage garbage')),
      encodedMessage(P, { key: true }),
      encodedMessage(SPS),
      encodedMessage(Buffer.concat([KEY, Buffer.alloc(8 * 1024 * 1024)]), { key: true }),
      encodedMessage(KEY, { key: true, ptsUs: Number.NaN }),
    ];
    for (const b of bad) ws.send(b);
    ws.send(encodedMessage(KEY, { key: true, ptsUs: 5 }));
    ws.send(encodedMessage(P, { flags: 2, ptsUs: 6 }));
    await new Promise<void>((resolve) => {
      ws.once('pong', () => resolve());
      ws.ping();
    });
    assert.equal(ingest.rejected, bad.length);
    assert.equal(got.length, 2);
    assert.deepEqual(
      got.map((g) => [g.key, g.repeat, g.ptsUs, g.clock, g.width, g.height]),
      [
        [true, false, 5, 'monotonic', 1920, 1080],
        [false, true, 6, 'monotonic', 1920, 1080],
      ],
    );
    ingest.requestKeyframe();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(texts.map((t) => JSON.parse(t) as unknown), [{ type: 'keyframe' }]);
    ws.close();
  } finally {
    await ingest.close();
  }
});

/** Reads GDP buffer packets (pts, flags, payload size) off what the transport wrote. */
function gdpBuffers(data: Buffer): { ptsMs: number; delta: boolean; size: number }[] {
  const out: { ptsMs: number; delta: boolean; size: number }[] = [];
  for (let i = 0; i + GDP_HEADER_LENGTH <= data.length; ) {
    const type = data.readUInt16BE(i + 4);
    const len = data.readUInt32BE(i + 6);
    if (type === 1) out.push({ ptsMs: Number(data.readBigUInt64BE(i + 10)) / 1e6, delta: (data.readUInt16BE(i + 42) & 0x2000) !== 0, size: len });
    i += GDP_HEADER_LENGTH + len;
  }
  return out;
}

test('transport, encoded video: opens on the first keyframe after the start (asking for one), drops what is paused, resumes on a keyframe, shifts by the pause, puts frames on the frame grid', () => {
  const video = new PassThrough();
  const chunks: Buffer[] = [];
  video.on('data', (c: Buffer) => chunks.push(c));
  let asked = 0;
  let now = 0;
  const t = new MediaTransport({ video, audio: null, framerate: 30, requestKeyframe: () => asked++, now: () => now });
  const au = (ptsMs: number, key = false) => t.pushEncodedVideo({ ptsUs: ptsMs * 1000, key, repeat: false, width: 1920, height: 1080, data: key ? KEY : P });
  try {
    au(0, true); // before the start: not written
    now = 100_000;
    t.start(100_000);
    assert.equal(asked, 1, 'a keyframe is asked for at the start');
    au(50, true); // captured more than a frame before the start
    au(120); // after the start but not a keyframe
    assert.equal(asked, 1, 'asked again at most every 100 ms');
    now = 250_000;
    au(140);
    assert.equal(asked, 2);
    au(160, true);
    au(193);
    au(226);
    t.pause(250_000);
    au(260);
    au(290, true);
    now = 600_000;
    t.resume(600_000);
    assert.equal(asked, 3, 'a keyframe is asked for at the resume');
    au(610);
    au(640, true);
    au(673);
  } finally {
    t.end(700_000);
  }
  const bufs = gdpBuffers(Buffer.concat(chunks));
  assert.deepEqual(
    bufs.map((b) => [Math.round(b.ptsMs), b.delta]),
    [
      // On the 30 fps grid: 193 − 100 → slot 3 (100 ms), 226 − 100 → slot 4.
      [0, false],
      [100, true],
      [133, true],
      // paused 250–600 ms: 640 → 640 − 100 − 350 = 190 → slot 6 (200 ms)
      [200, false],
      [233, true],
    ],
  );
  assert.equal(t.stats.videoFramesWritten, 5);
});

test('transport, encoded video: a keyframe stamped less than a frame before the start opens the recording at 0', () => {
  const video = new PassThrough();
  const chunks: Buffer[] = [];
  video.on('data', (c: Buffer) => chunks.push(c));
  const t = new MediaTransport({ video, audio: null, framerate: 30, now: () => 100_000 });
  try {
    t.start(100_000);
    t.pushEncodedVideo({ ptsUs: 80_000, key: true, repeat: false, width: 1920, height: 1080, data: KEY });
    t.pushEncodedVideo({ ptsUs: 113_000, key: false, repeat: false, width: 1920, height: 1080, data: P });
  } finally {
    t.end(200_000);
  }
  assert.deepEqual(
    gdpBuffers(Buffer.concat(chunks)).map((b) => Math.round(b.ptsMs)),
    // 13 ms rounds to slot 0, which the keyframe took: the next slot.
    [0, 33],
  );
});

test('transport, encoded video: after a hold (a room reconnecting) is released, the video goes on from a keyframe', () => {
  const video = new PassThrough();
  const chunks: Buffer[] = [];
  video.on('data', (c: Buffer) => chunks.push(c));
  let asked = 0;
  const t = new MediaTransport({ video, audio: null, framerate: 30, requestKeyframe: () => asked++, now: () => 0 });
  const au = (ptsMs: number, key = false) => t.pushEncodedVideo({ ptsUs: ptsMs * 1000, key, repeat: false, width: 1920, height: 1080, data: key ? KEY : P });
  try {
    t.start(0);
    au(0, true);
    au(33);
    t.hold(50_000);
    au(66); // past the hold: dropped
    t.release();
    assert.equal(asked, 2, 'a keyframe is asked for at the release');
    au(100); // references the dropped frame: not written
    au(133, true);
    au(166);
  } finally {
    t.end(200_000);
  }
  assert.deepEqual(
    gdpBuffers(Buffer.concat(chunks)).map((b) => [Math.round(b.ptsMs), b.delta]),
    [
      [0, false],
      [33, true],
      [133, false],
      [167, true],
    ],
  );
});

test('pipeline: encoded video goes through h264parse into the muxer, no x264; images are refused with it', () => {
  const base = { video: { width: 1920, height: 1080, framerate: 30, bitrateKbps: 4500, profile: 'main' as const, keyFrameIntervalS: 0, threads: 0 }, audio: null };
  const args = buildLaunchArgs({ ...base, encodedVideo: true, file: { container: 'mp4', location: '/tmp/x.mp4' } }).join(' ');
  assert.match(args, /gdpdepay ! queue .* ! h264parse ! tee name=vtee/);
  assert.doesNotMatch(args, /x264enc|videoconvert/);
  assert.throws(() => buildLaunchArgs({ ...base, encodedVideo: true, file: null, images: [{ name: 'img0', locationPattern: '/tmp/i_%05d.jpeg', intervalS: 5, width: 0, height: 0 }] }), /raw video/);
});
