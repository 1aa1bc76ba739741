/**
 * FlvFanout while the recording is paused: the last keyframe is repeated and AAC silence sent with
 * timestamps following the wall clock, and after the resume the pipeline's tags (whose timestamps
 * go on where they stopped) are shifted so the subscriber's timeline never goes back or jumps.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassThrough } from 'node:stream';
import { FlvFanout } from '../../gst/flv-fanout.js';

function tag(type: number, ts: number, data: Buffer): Buffer {
  const b = Buffer.alloc(11 + data.length + 4);
  b[0] = type;
  b.writeUIntBE(data.length, 1, 3);
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b[7] = (ts >>> 24) & 0xff;
  data.copy(b, 11);
  b.writeUInt32BE(11 + data.length, 11 + data.length);
  return b;
}
const header = Buffer.from([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
// AAC-LC 48 kHz stereo AudioSpecificConfig 0x1190
const audioConfig = tag(8, 0, Buffer.from([0xaf, 0, 0x11, 0x90]));
const videoConfig = tag(9, 0, Buffer.from([0x17, 0, 0, 0, 0, 1, 2, 3]));
const keyframe = (ts: number): Buffer => tag(9, ts, Buffer.from([0x17, 1, 0, 0, 40, 9, 9, 9]));
const delta = (ts: number): Buffer => tag(9, ts, Buffer.from([0x27, 1, 0, 0, 40, 8]));
const audio = (ts: number): Buffer => tag(8, ts, Buffer.from([0xaf, 1, 7, 7]));

function parse(bytes: Buffer): { type: number; ts: number; data: Buffer }[] {
  const out: { type: number; ts: number; data: Buffer }[] = [];
  let i = 13;
  while (i + 11 <= bytes.length) {
    const size = bytes.readUIntBE(i + 1, 3);
    out.push({ type: bytes[i] ?? 0, ts: (bytes.readUIntBE(i + 4, 3) | ((bytes[i + 7] ?? 0) << 24)) >>> 0, data: bytes.subarray(i + 11, i + 11 + size) });
    i += 11 + size + 4;
  }
  return out;
}

test('paused: last keyframe repeated + AAC silence along the wall clock; resumed: later tags shifted, timestamps never go back', async () => {
  const f = new FlvFanout();
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  f.subscribe(sink);
  f.push(Buffer.concat([header, audioConfig, videoConfig]));
  for (let t = 0; t <= 1000; t += 40) f.push(t % 400 === 0 ? keyframe(t) : delta(t));
  for (let t = 0; t <= 1000; t += 21) f.push(audio(t));
  f.setPaused(true);
  await new Promise((r) => setTimeout(r, 1600));
  f.setPaused(false);
  // the pipeline goes on where it stopped
  for (let t = 1040; t <= 1400; t += 40) f.push(t % 400 === 0 ? keyframe(t) : delta(t));
  const tags = parse(Buffer.concat(chunks)).filter((t) => t.ts > 0 || t.data[1] === 1);
  assert.ok(f.filledVideoTags >= 4, `${f.filledVideoTags} keyframe copies`);
  assert.ok(f.filledAudioTags >= 40, `${f.filledAudioTags} silence frames`);
  const video = tags.filter((t) => t.type === 9);
  for (let i = 1; i < video.length; i++) assert.ok((video[i]?.ts ?? 0) >= (video[i - 1]?.ts ?? 0), `video timestamps go on: ${video.map((v) => v.ts).join(' ')}`);
  // copies of the last keyframe (800) with composition offset 0 (the real ones keep theirs: 40)
  const filled = video.filter((v) => v.ts > 1000 && v.data[0] === 0x17 && v.data[4] === 0);
  assert.ok(filled.length >= 4);
  for (const v of filled) assert.deepEqual([...v.data], [0x17, 1, 0, 0, 0, 9, 9, 9]);
  // silence frames: AAC raw, the stereo silence payload
  const silence = tags.filter((t) => t.type === 8 && t.data.length === 8);
  assert.ok(silence.length >= 40);
  assert.equal(silence[0]?.data.subarray(2).toString('hex'), '211004608c1c');
  // after the resume: shifted past the filled time (≈ 1 s filled after 300 ms of quiet)
  const resumed = video.filter((v) => v.data.length === 6 || v.data[4] === 40);
  const firstAfter = resumed.find((v) => v.ts > 1000);
  assert.ok(firstAfter, 'tags after the resume');
  const lastFilled = filled[filled.length - 1]?.ts ?? 0;
  assert.ok(firstAfter.ts > lastFilled && firstAfter.ts - lastFilled <= 60, `first tag after the resume at ${firstAfter.ts}, last filled at ${lastFilled}`);
  assert.ok(lastFilled - 1000 >= 900, `filled up to ${lastFilled} ms`);
});

test('not paused: nothing is filled, timestamps untouched', async () => {
  const f = new FlvFanout();
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  f.subscribe(sink);
  f.push(Buffer.concat([header, audioConfig, videoConfig, keyframe(0), audio(10)]));
  await new Promise((r) => setTimeout(r, 500));
  f.push(Buffer.concat([delta(40), keyframe(2000)]));
  assert.equal(f.filledVideoTags + f.filledAudioTags, 0);
  assert.deepEqual(
    parse(Buffer.concat(chunks)).filter((t) => t.data[1] === 1).map((t) => t.ts),
    [0, 10, 40, 2000],
  );
});
