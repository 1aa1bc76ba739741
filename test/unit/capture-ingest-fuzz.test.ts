/**
 * Hostile input on the page's capture socket (main/capture/capture-ingest.ts), from a raw WebSocket
 * client: wrong paths, extra connections, random and truncated binary frames, lying headers, bad
 * timestamps, text garbage, oversized messages. Nothing crashes, nothing invalid is emitted, each bad
 * message is counted as rejected, and a valid frame afterwards is still taken.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { CaptureIngest } from '../../main/capture/capture-ingest.js';
import { frameSize } from '../../gst/media-transport.js';
import { setLogLevel } from '../../main/log.js';

setLogLevel(false);

function connect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closeCode(ws: WebSocket, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket not closed')), timeoutMs);
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

function header(kind: number, opts: { format?: number; channels?: number; width?: number; height?: number; clock?: number; ptsUs?: number; sampleRate?: number } = {}): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt8(kind, 0);
  if (kind === 1) {
    h.writeUInt8(opts.format ?? 1, 1);
    h.writeUInt32LE(opts.width ?? 2, 4);
    h.writeUInt32LE(opts.height ?? 2, 8);
  } else {
    h.writeUInt16LE(opts.channels ?? 2, 2);
    h.writeUInt32LE(opts.sampleRate ?? 48000, 4);
  }
  h.writeUInt8(opts.clock ?? 0, 12);
  h.writeDoubleLE(opts.ptsUs ?? 1000, 16);
  return h;
}

/** Sends and waits until the server has read it (a ping round trip after it). */
async function sendAll(ws: WebSocket, msgs: (Buffer | string)[]): Promise<void> {
  for (const m of msgs) ws.send(m, { binary: typeof m !== 'string' });
  await new Promise<void>((resolve) => {
    ws.once('pong', () => resolve());
    ws.ping();
  });
}

test('capture socket: wrong path and a second connection are refused (1008); hostile messages are rejected and counted, nothing invalid is emitted, a valid frame still goes through', async () => {
  const ingest = new CaptureIngest(1);
  const url = await ingest.listen();
  const emitted = { video: 0, audio: 0, control: 0 };
  ingest.on('video', () => emitted.video++);
  ingest.on('audio', () => emitted.audio++);
  ingest.on('control', () => emitted.control++);
  try {
    const wrong = await connect(url.replace(/capture\/[0-9a-f]+$/, 'capture/00'));
    assert.equal(await closeCode(wrong), 1008);
    const ws = await connect(url);
    const second = await connect(url);
    assert.equal(await closeCode(second), 1008, 'one page connection only');

    const bad: (Buffer | string)[] = [
      Buffer.alloc(0),
      Buffer.alloc(23),
      header(1, { format: 0 }),
      header(1, { format: 99 }),
      header(1, { width: 0 }),
      header(1, { width: 100_000, height: 100_000 }),
      header(1, { width: 0xffffffff, height: 0xffffffff }),
      Buffer.concat([header(1), Buffer.alloc(5)]), // I420 2x2 needs 6
      Buffer.concat([header(1), Buffer.alloc(7)]),
      Buffer.concat([header(1, { ptsUs: Number.NaN }), Buffer.alloc(6)]),
      Buffer.concat([header(1, { ptsUs: Number.POSITIVE_INFINITY }), Buffer.alloc(6)]),
      Buffer.concat([header(1, { clock: 9 }), Buffer.alloc(6)]),
      Buffer.concat([header(2, { channels: 0 }), Buffer.alloc(8)]),
      Buffer.concat([header(2, { channels: 9 }), Buffer.alloc(72)]),
      Buffer.concat([header(2, { sampleRate: 1 }), Buffer.alloc(8)]),
      Buffer.concat([header(2, { sampleRate: 0xffffffff }), Buffer.alloc(8)]),
      Buffer.concat([header(2), Buffer.alloc(7)]),
      Buffer.concat([header(7), Buffer.alloc(16)]),
      'not json',
      '{"type":"started"}',
      '{"type":"started","atUs":"x","width":-1,"height":1.5}',
      '{"type":"ended","atUs":1e999}',
      JSON.stringify({ type: 'error', message: 'x'.repeat(5000) }),
      JSON.stringify({ type: 'nope' }),
      '[]',
      'null',
      '{"__proto__":{"type":"ended","atUs":1}}',
      JSON.stringify({ type: 'started', atUs: 1, width: 2, height: 2, extra: 'x'.repeat(1024 * 1024) }).replace('"extra"', '"type2"').replace('"type":"started"', '"type":5'),
    ];
    // Random binary, some of it starting like a real header.
    for (let i = 0; i < 300; i++) {
      const b = randomBytes(Math.floor(Math.random() * 200));
      if (i % 3 === 0 && b.length >= 24) b.writeUInt8(1 + (i % 2), 0);
      bad.push(b);
    }
    await sendAll(ws, bad);
    // Random binary is allowed to form a valid message by chance: count only what the fixed cases prove.
    assert.ok(ingest.rejected >= 28, `${ingest.rejected} rejected`);
    assert.equal(emitted.control, 0, 'no invalid control message emitted');
    const videoBefore = emitted.video;
    const audioBefore = emitted.audio;

    const goodVideo = Buffer.concat([header(1), Buffer.alloc(frameSize('I420', 2, 2))]);
    const goodAudio = Buffer.concat([header(2), Buffer.alloc(4 * 2 * 10)]);
    await sendAll(ws, [goodVideo, goodAudio, JSON.stringify({ type: 'started', atUs: 5, width: 2, height: 2 })]);
    assert.equal(emitted.video, videoBefore + 1);
    assert.equal(emitted.audio, audioBefore + 1);
    assert.equal(emitted.control, 1);
    ws.close();
  } finally {
    await ingest.close();
  }
});

test('capture socket: a message over the 64 MiB limit closes that connection (1009) and ends the capture; the process goes on', async () => {
  const ingest = new CaptureIngest(1);
  const url = await ingest.listen();
  let disconnected = 0;
  ingest.on('disconnected', () => disconnected++);
  try {
    const ws = await connect(url);
    const closed = closeCode(ws, 30_000);
    ws.send(Buffer.alloc(64 * 1024 * 1024 + 1), { binary: true });
    assert.equal(await closed, 1009);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(disconnected, 1);
  } finally {
    await ingest.close();
  }
});
