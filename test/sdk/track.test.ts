/**
 * Track egress (v1 TrackEgressRequest, SDK source) through livekit-server-sdk → livekit-server →
 * Redis → our worker: an Opus microphone track → OGG/Opus (decoded and re-encoded, as the original
 * does for Opus), named by the track placeholders, ending when the track is unpublished; VP8 / VP9
 * → WebM and H264 → MP4 written as published (no transcode: the codec and size in the file are the
 * publisher's); a video track to a WebSocket is refused with the original's error.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DirectFileOutput, EgressStatus } from 'livekit-server-sdk';
import { EncodingOptionsPreset, FileOutput, MediaSource, Output, StartEgressRequest as LkStartEgressRequest } from '@livekit/protocol';
import { RedisBus } from '../../main/rpc/psrpc/bus.js';
import { PsrpcClient } from '../../main/rpc/psrpc/client.js';
import { StartEgressRequest } from '../../main/rpc/messages.js';
import { EgressInternal } from '../../main/rpc/services.js';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import type { PublisherHandle as Publisher } from '../support/publisher.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { analyse, assertPresent, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';

setLogLevel('error');
const execFileP = promisify(execFile);
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';

/** A loopback WebSocket server that keeps what a track egress sends (the original's test server). */
async function startPcmServer() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const chunks: Buffer[] = [];
  const texts: { text: string; atMs: number }[] = [];
  let headers: IncomingHttpHeaders = {};
  let firstBinary = 0;
  let code = -1;
  const clients = new Set<WebSocket>();
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  wss.on('connection', (ws, req) => {
    headers = req.headers;
    clients.add(ws);
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      if (isBinary) {
        firstBinary ||= Date.now();
        chunks.push(buf);
      } else texts.push({ text: buf.toString('utf8'), atMs: Date.now() });
    });
    ws.on('close', (c) => {
      code = c;
      clients.delete(ws);
      resolveClosed();
    });
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/pcm`,
    chunks,
    texts,
    closed,
    get headers() {
      return headers;
    },
    bytes: () => chunks.reduce((n, c) => n + c.length, 0),
    firstBinaryAt: () => firstBinary,
    closeCode: () => code,
    closeClients: () => {
      for (const c of clients) c.close(1000);
    },
    close: () => new Promise<void>((r) => {
      for (const c of clients) c.terminate();
      wss.close(() => r());
    }),
  };
}

/** A 44-byte WAV header for s16le 48 kHz stereo PCM of `bytes` bytes. */
function wavHeader(bytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + bytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(2, 22);
  h.writeUInt32LE(48000, 24);
  h.writeUInt32LE(48000 * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(bytes, 40);
  return h;
}

describe('track egress (SDK source) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  test('Opus microphone track → OGG/Opus 48 kHz stereo named t_{track_source}_{publisher_identity}; unpublishing ends it; the tone in every second', async () => {
    const room = 'track-opus';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const sid = p1.trackSids.audio;
    assert.ok(sid);
    const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 't_{track_source}_{publisher_identity}_{track_type}') }), sid);
    assert.equal(info.status, EgressStatus.EGRESS_STARTING);
    const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.sourceType, 1, 'EGRESS_SOURCE_TYPE_SDK');
    await sleep(10_000);
    await p1.unpublishAudio();
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    assert.equal(done.details, 'End reason: Source closed');
    const f = done.fileResults[0];
    assert.ok(f && f.size > 0n && f.duration > 0n, 'file result');
    assert.match(f.filename, /t_microphone_p1_audio\.ogg$/);
    const probe = await ffprobe(f.location);
    assert.equal(videoStream(probe), undefined);
    const a = audioStream(probe);
    assert.equal(a?.codec_name, 'opus');
    assert.equal(Number(a?.sample_rate), 48000);
    assert.equal(a?.channels, 2);
    const reported = Number(f.duration) / 1e9;
    assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
    assert.ok(reported >= 9, `${reported} s recorded`);
    const report = await analyse('track-opus', f.location, regionsOf([p1], [undefined]));
    assertPresent(report, 1, report.seconds - 1, 0.95, { colour: false });
  });

  for (const codec of ['vp8', 'vp9', 'h264'] as const) {
    const container = codec === 'h264' ? 'mp4' : 'webm';
    test(`${codec.toUpperCase()} video track → ${container.toUpperCase()} without transcoding: same codec and size as published, keyframe first, ±1 s of the reported duration, the colour in every second${codec === 'vp8' ? '; to a WebSocket → the original\'s `format websocket incompatible with codec`' : ''}`, async () => {
      const room = `track-video-${codec}`;
      const [p2] = await startPublishers(env, room, 1, { video: { codec }, audio: false }, 1);
      assert.ok(p2);
      pubs.push(p2);
      const sid = p2.trackSids.video;
      assert.ok(sid);
      const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, `vt-${codec}-{track_type}_{track_source}_{publisher_identity}`) }), sid);
      const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
      assert.equal(active.sourceType, 1, 'EGRESS_SOURCE_TYPE_SDK');
      await sleep(10_000);
      await env.egress.stopEgress(info.egressId);
      const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
      const f = done.fileResults[0];
      assert.ok(f && f.size > 0n && f.duration > 0n, 'file result');
      assert.match(f.filename, new RegExp(`vt-${codec}-video_camera_p2\\.${container}$`));
      const probe = await ffprobe(f.location);
      assert.equal(audioStream(probe), undefined);
      const v = videoStream(probe);
      assert.equal(v?.codec_name, codec);
      assert.equal(v?.width, 640);
      assert.equal(v?.height, 360);
      assert.match(probe.format.format_name, codec === 'h264' ? /mp4/ : /webm|matroska/);
      const reported = Number(f.duration) / 1e9;
      assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
      assert.ok(reported >= 9, `${reported} s recorded`);
      // Keyframe-gated: the first packet written is a keyframe.
      const { stdout: firstPacket } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1', '-show_entries', 'packet=flags', '-of', 'csv=p=0', f.location]);
      assert.match(firstPacket.trim(), /^K/, `first packet flags ${firstPacket.trim()}`);
      const { stdout: keys } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', f.location]);
      const keyTimes = keys.trim().split('\n').filter((l) => l.split(',')[1]?.startsWith('K')).map((l) => Number(l.split(',')[0]));
      process.stdout.write(`# ${codec} keyframes at ${keyTimes.map((k) => k.toFixed(2)).join(' ')}\n`);
      const report = await analyse(`track-${codec}`, f.location, regionsOf([p2], [{ x: 0, y: 0, w: 640, h: 360 }]));
      assertPresent(report, 1, report.seconds - 1, 0.95, { tone: false });
      if (codec !== 'vp8') return;
      const ws = await startPcmServer();
      try {
        const toWs = await env.egress.startTrackEgress(room, ws.url, sid);
        const wsFailed = await waitStatus(env, toWs.egressId, EgressStatus.EGRESS_FAILED, 30_000);
        assert.equal(wsFailed.error, 'format websocket incompatible with codec video/vp8');
        assert.equal(wsFailed.errorCode, 400);
        assert.equal(ws.bytes(), 0);
      } finally {
        await ws.close();
      }
    });
  }

  test('v2 PASSTHROUGH (psrpc StartEgress straight to the worker: livekit-server v1.13.5 rewrites the preset) of a VP8 video_track_id → WebM as published', async () => {
    const room = 'track-v2-passthrough';
    const [p4] = await startPublishers(env, room, 1, { video: { codec: 'vp8' }, audio: false }, 3);
    assert.ok(p4);
    pubs.push(p4);
    const sid = p4.trackSids.video;
    assert.ok(sid);
    const egressId = `EG_pt${Date.now().toString(36)}`;
    const bus = await RedisBus.connect({ redis: env.redis.url });
    const client = new PsrpcClient(bus);
    try {
      const v2 = new LkStartEgressRequest({
        roomName: room,
        encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH },
        source: { case: 'media', value: new MediaSource({ video: { case: 'videoTrackId', value: sid } }) },
        outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: join(env.dir, 'pt-{track_id}') }) } })],
      });
      const started = await client.call(EgressInternal.StartEgress, '', new StartEgressRequest({ egressId, roomName: room, request: { case: 'egress', value: v2 } }), { timeoutMs: 30_000 });
      assert.equal(started.status, EgressStatus.EGRESS_STARTING);
      await waitStatus(env, egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
      await sleep(8000);
      await env.egress.stopEgress(egressId);
      const done = await waitStatus(env, egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
      const f = done.fileResults[0];
      assert.ok(f && f.size > 0n, 'file result');
      assert.match(f.filename, new RegExp(`pt-${sid}\\.webm$`));
      const probe = await ffprobe(f.location);
      const v = videoStream(probe);
      assert.equal(v?.codec_name, 'vp8');
      assert.equal(v?.width, 640);
      assert.equal(v?.height, 360);
      const reported = Number(f.duration) / 1e9;
      assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
      const report = await analyse('track-v2-passthrough', f.location, regionsOf([p4], [{ x: 0, y: 0, w: 640, h: 360 }]));
      assertPresent(report, 1, report.seconds - 1, 0.95, { tone: false });
    } finally {
      client.close();
      await bus.close();
    }
  });

  test('WebSocket PCM: s16le 48 kHz stereo with the beeps, {"muted":…} text frames at the mute / unmute, Close at the end', async () => {
    const room = 'track-ws';
    const [p3] = await startPublishers(env, room, 1, { video: false }, 2);
    assert.ok(p3);
    pubs.push(p3);
    const sid = p3.trackSids.audio;
    assert.ok(sid);
    const ws = await startPcmServer();
    try {
      const info = await env.egress.startTrackEgress(room, ws.url, sid);
      await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
      assert.equal(ws.headers['content-type'], 'audio/x-raw');
      await sleep(10_000);
      const mutedAt = Date.now();
      await p3.muteAudio(true);
      await sleep(6000);
      const unmutedAt = Date.now();
      await p3.muteAudio(false);
      await sleep(18_000);
      await p3.unpublishAudio();
      const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
      await ws.closed;
      assert.equal(ws.closeCode(), 1005, 'a Close frame without payload');
      const st = done.streamResults[0];
      assert.ok(st, 'stream result');
      assert.equal(st.status, 1, 'FINISHED');
      console.log(`# websocket: ${ws.bytes()} bytes, texts ${JSON.stringify(ws.texts.map((t) => ({ ...t, atMs: t.atMs - ws.firstBinaryAt() })))}`);
      assert.ok(ws.bytes() >= 6_300_000, `${ws.bytes()} bytes`);
      const muted = ws.texts.map((t) => t.text);
      assert.deepEqual(muted, ['{"muted":true}', '{"muted":false}']);
      const [tMute, tUnmute] = ws.texts;
      assert.ok(tMute && Math.abs(tMute.atMs - mutedAt) < 2000 && tUnmute && Math.abs(tUnmute.atMs - unmutedAt) < 2000, 'text frames at the mute / unmute');
      const wav = join(env.dir, 'ws.wav');
      await writeFile(wav, Buffer.concat([wavHeader(ws.bytes()), ...ws.chunks]));
      const probe = await ffprobe(wav);
      const a = audioStream(probe);
      assert.equal(a?.codec_name, 'pcm_s16le');
      assert.equal(Number(a?.sample_rate), 48000);
      assert.equal(a?.channels, 2);
      const reported = Number(st.duration) / 1e9;
      assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 4.1, `PCM ${probe.format.duration} s vs reported ${reported} s`);
      const report = await analyse('track-ws', wav, regionsOf([p3], [undefined]));
      const m = Math.floor((mutedAt - ws.firstBinaryAt()) / 1000);
      const u = Math.ceil((unmutedAt - ws.firstBinaryAt()) / 1000);
      console.log(`# track-ws tone by second (muted ${m}–${u}): ${report.publishers[0]?.toneSeconds.map(Number).join('')}`);
      assertPresent(report, 1, m - 1, 0.95, { colour: false });
      assertPresent(report, u + 2, report.seconds - 1, 0.95, { colour: false });
      const tones = report.publishers[0]?.toneSeconds.slice(m + 1, u - 1) ?? [];
      assert.ok(tones.length >= 3 && tones.every((t) => !t), `silent while muted (${tones.map(Number).join('')})`);
    } finally {
      await ws.close();
    }
  });

  test('WebSocket: the server closing first → FAILED', async () => {
    const room = 'track-ws-close';
    const [p4] = await startPublishers(env, room, 1, { video: false }, 3);
    assert.ok(p4);
    pubs.push(p4);
    const ws = await startPcmServer();
    try {
      const info = await env.egress.startTrackEgress(room, ws.url, p4.trackSids.audio ?? '');
      await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
      await sleep(3000);
      ws.closeClients();
      const failed = await waitStatus(env, info.egressId, EgressStatus.EGRESS_FAILED, 30_000);
      assert.equal(failed.error, 'websocket closed by the server');
      assert.equal(failed.streamResults[0]?.status, 2, 'stream FAILED');
    } finally {
      await ws.close();
    }
  });
});
