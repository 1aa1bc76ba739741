/**
 * WebSocket output of a page egress (v2 web source), against a real
 * WebSocket server on loopback: the egress dials with `Content-Type: audio/x-raw`, sends the page's
 * audio as binary frames of raw PCM (s16le, 48 kHz, stereo) — checked by content: ffprobe reads the
 * received bytes as that format, and the page's once-a-second beeps are found in it exactly 1 s
 * apart (a wrong rate or channel count would space them differently) — and a Close frame at the
 * end. The server closing first fails the egress (destination error); a URL nobody listens on
 * fails it with the dial error. A room template (v2 StartEgressRequest through livekit-server and
 * the worker) sends its room's audio the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EgressStatus, Output, StartEgressRequest, StreamInfo_Status, StreamOutput, StreamProtocol, TemplateSource } from '@livekit/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { beepOnsets } from '../support/media.js';
import { runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import { freePort } from '../harness/storage.js';
import { livekitBinary } from '../harness/livekit.js';
import type { PublisherHandle } from '../support/publisher.js';
import { sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';

const run = promisify(execFile);

/** A WebSocket server on a free loopback port that keeps what one client sends. */
interface PcmServer {
  readonly url: string;
  readonly binary: Buffer[];
  readonly texts: string[];
  contentType: string | undefined;
  /** Close code of the client's Close frame (1005: a Close frame without payload), null before. */
  closeCode: number | null;
  client: WebSocket | null;
  bytes(): number;
  close(): Promise<void>;
}

async function startPcmServer(): Promise<PcmServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const s: PcmServer = {
    url: `ws://127.0.0.1:${address.port}/pcm?token=secret`,
    binary: [],
    texts: [],
    contentType: undefined,
    closeCode: null,
    client: null,
    bytes: () => s.binary.reduce((n, b) => n + b.length, 0),
    close: () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => r());
    }),
  };
  wss.on('connection', (ws, req) => {
    s.client = ws;
    s.contentType = req.headers['content-type'];
    ws.on('message', (data, isBinary) => {
      if (isBinary) s.binary.push(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
      else s.texts.push(String(data));
    });
    ws.on('close', (code) => (s.closeCode = code));
  });
  return s;
}

/**
 * Probes what the server received as s16le 48 kHz stereo and finds the once-a-second beeps in it, in
 * both channels; returns the PCM's duration, the beep count and their median spacing.
 */
async function checkPcm(server: PcmServer, name: string): Promise<{ bytes: number; seconds: number; beeps: number; spacing: number }> {
  const raw = join(tmp.path, `${name}.raw`);
  await writeFile(raw, Buffer.concat(server.binary));
  const { stdout } = await run('ffprobe', ['-v', 'error', '-f', 's16le', '-ar', '48000', '-ac', '2', '-show_streams', '-show_format', '-of', 'json', raw]);
  const probe = JSON.parse(stdout) as { streams: { codec_name: string; sample_rate: string; channels: number }[]; format: { duration: string } };
  const a = probe.streams[0];
  assert.ok(a);
  assert.deepEqual([a.codec_name, a.sample_rate, a.channels], ['pcm_s16le', '48000', 2]);
  const seconds = Number(probe.format.duration);
  const wav = join(tmp.path, `${name}.wav`);
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 's16le', '-ar', '48000', '-ac', '2', '-i', raw, wav]);
  const onsets = await beepOnsets(wav);
  assert.ok(onsets.length >= Math.floor(seconds) - 3, `${onsets.length} beeps in ${seconds} s`);
  const gaps = onsets.slice(1).map((t, i) => t - (onsets[i] as number));
  const spacing = [...gaps].sort((x, y) => x - y)[Math.floor(gaps.length / 2)] as number;
  // A wrong rate or channel count would space them differently (44.1 kHz read as 48 kHz: 8.8 %; mono
  // read as stereo: 100 %). 2 % leaves room for a room template's jitter buffer, which starts low and
  // grows to its target by slowing playout: about 100 ms spread over the first 6–8 s of the page's
  // audio, 12–17 ms per beep gap; a CI run's 15 s recording had a median gap of 1.006 s.
  assert.ok(Math.abs(spacing - 1) <= 0.02, `beeps ${spacing.toFixed(4)} s apart`);
  for (const ch of ['FL', 'FR']) {
    const mono = join(tmp.path, `${name}-${ch}.wav`);
    await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-af', `pan=mono|c0=${ch}`, mono]);
    const n = (await beepOnsets(mono)).length;
    assert.ok(Math.abs(n - onsets.length) <= 1, `${n} beeps in ${ch}, ${onsets.length} in the mix`);
  }
  return { bytes: server.bytes(), seconds, beeps: onsets.length, spacing };
}

const wsOutput = (url: string): Output => new Output({ config: { case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls: [url] }) } });

/** The echoed StreamInfo URL: the query values redacted only in the echoed request, not here. */
let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp?.remove();
});

describe('WebSocket output of a web page (v2)', () => {
  it('raw PCM s16le 48 kHz stereo with the page\'s beeps, a Close frame at the end; StreamInfo FINISHED with the recording\'s duration', async () => {
    const server = await startPcmServer();
    try {
      // 34 s: > 6 300 000 bytes (the original's bound) is 32.8 s of this format.
      const RECORD_MS = 34_000;
      const { info } = await withServer(TEMPLATES_DIR, (base) =>
        runWebEgress({
          request: { url: base + 'avsync/' },
          outputs: [wsOutput(server.url)],
          stopAfterMs: RECORD_MS,
          tmpDir: join(tmp.path, 'pcm'),
          timeoutMs: 120_000,
        }),
      );
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(server.contentType, 'audio/x-raw');
      assert.equal(server.closeCode, 1005, 'a Close frame without payload');
      assert.deepEqual(server.texts, [], 'a page has no track to mute');
      assert.equal(info.streamResults.length, 1);
      const st = info.streamResults[0];
      assert.ok(st);
      assert.equal(st.url, server.url);
      assert.equal(st.status, StreamInfo_Status.FINISHED);
      const streamS = Number(st.duration) / 1e9;
      assert.ok(Math.abs(streamS - RECORD_MS / 1000) < 1, `StreamInfo duration ${streamS} s`);

      const bytes = server.bytes();
      assert.ok(bytes > 6_300_000, `${bytes} bytes received`);
      const pcm = await checkPcm(server, 'web');
      // Nothing lost and nothing added: the PCM lasts as long as the recording (the original allows 4.1 s).
      assert.ok(Math.abs(pcm.seconds - streamS) < 0.5, `PCM ${pcm.seconds} s, StreamInfo ${streamS} s`);
      console.log(`# websocket: ${bytes} bytes, ${pcm.seconds.toFixed(2)} s of PCM, StreamInfo ${streamS.toFixed(2)} s, ${pcm.beeps} beeps ${pcm.spacing.toFixed(4)} s apart`);
    } finally {
      await server.close();
    }
  });

  it('the server closing first: FAILED (destination error); a URL nobody listens on: FAILED with the dial error', async () => {
    const server = await startPcmServer();
    try {
      const { info } = await withServer(TEMPLATES_DIR, (base) =>
        runWebEgress({
          request: { url: base + 'avsync/' },
          outputs: [wsOutput(server.url)],
          onActive: () => setTimeout(() => server.client?.close(1000), 3000),
          tmpDir: join(tmp.path, 'closed'),
          timeoutMs: 60_000,
        }),
      );
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.equal(info.errorCode, 503);
      assert.match(info.error, /websocket closed by the server/);
      assert.equal(info.streamResults[0]?.status, StreamInfo_Status.FAILED);
      assert.ok(server.bytes() > 192_000, `${server.bytes()} bytes before the close`);
    } finally {
      await server.close();
    }
    const port = await freePort();
    const { info } = await runWebEgress({
      request: { url: 'http://127.0.0.1:1/never-loaded' },
      outputs: [wsOutput(`ws://127.0.0.1:${port}/pcm`)],
      tmpDir: join(tmp.path, 'dial'),
      timeoutMs: 60_000,
    });
    assert.equal(info.status, EgressStatus.EGRESS_FAILED);
    assert.equal(info.errorCode, 400);
    assert.match(info.error, /^websocket dial failed: .*ECONNREFUSED/);
  });
});

describe('WebSocket output of a room template (v2, through livekit-server and the worker)', { skip: livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test' }, () => {
  let env: RoomEnv;
  const pubs: PublisherHandle[] = [];
  before(async () => {
    env = await startRoomEnv();
  });
  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  /**
   * Records room `ws-room` through `template` to a loopback PCM server for 15 s, stops it and checks
   * the stream: content type, Close frame, FINISHED, ≥ 14 s of PCM matching its StreamInfo.
   */
  async function recordToPcm(template: TemplateSource, label: string, logLabel: string): Promise<void> {
    const server = await startPcmServer();
    try {
      const info = await env.egress.startEgress(new StartEgressRequest({ roomName: 'ws-room', source: { case: 'template', value: template }, outputs: [wsOutput(server.url)] }));
      const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
      assert.equal(active.streamResults[0]?.status, StreamInfo_Status.ACTIVE);
      await sleep(15_000);
      await env.egress.stopEgress(info.egressId);
      const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
      assert.equal(server.contentType, 'audio/x-raw');
      assert.equal(server.closeCode, 1005);
      const st = done.streamResults[0];
      assert.equal(st?.status, StreamInfo_Status.FINISHED);
      const streamS = Number(st?.duration ?? 0n) / 1e9;
      const pcm = await checkPcm(server, label);
      assert.ok(pcm.seconds >= 14, `${pcm.seconds} s of PCM`);
      assert.ok(Math.abs(pcm.seconds - streamS) < 0.5, `PCM ${pcm.seconds} s, StreamInfo ${streamS} s`);
      console.log(`# websocket (${logLabel}): ${pcm.bytes} bytes, ${pcm.seconds.toFixed(2)} s, ${pcm.beeps} beeps ${pcm.spacing.toFixed(4)} s apart`);
    } finally {
      await server.close();
    }
  }

  it('grid template, one publisher beeping once a second: its audio as raw PCM; StopEgress → COMPLETE, Close frame', async () => {
    await env.rooms.createRoom({ name: 'ws-room' });
    pubs.push(...(await startPublishers(env, 'ws-room', 1, { video: false })));
    await recordToPcm(new TemplateSource({ layout: 'grid' }), 'room', 'template');
  });

  it('audio-only template (the room mix, no page): the same PCM from the mixer; StopEgress → COMPLETE', async () => {
    await recordToPcm(new TemplateSource({ audioOnly: true }), 'room-mix', 'audio-only template');
  });
});
