/**
 * AudioGapFiller: captured audio stays on its timestamps when chunks are lost (silence of exactly the
 * lost length) or overlap (the overlap trimmed), and stamps that differ by rounding pass untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioGapFiller } from '../../gst/audio-gaps.js';
import type { AudioChunkIn } from '../../gst/media-transport.js';

const RATE = 48000;
/** A 10 ms stereo chunk at `ptsUs` whose samples all equal `value`. */
function chunk(ptsUs: number, value: number, frames = 480): AudioChunkIn {
  const f = new Float32Array(frames * 2).fill(value);
  return { ptsUs, sampleRate: RATE, channels: 2, data: Buffer.from(f.buffer) };
}

function collect(): { out: AudioChunkIn[]; filler: AudioGapFiller } {
  const out: AudioChunkIn[] = [];
  return { out, filler: new AudioGapFiller((c) => out.push(c)) };
}

const framesOf = (c: AudioChunkIn): number => c.data.length / 8;

/** Every output chunk starts where the previous ended (±1 µs): the audio is continuous. */
function assertContinuous(out: AudioChunkIn[]): void {
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1] as AudioChunkIn;
    const end = prev.ptsUs + (framesOf(prev) * 1e6) / RATE;
    assert.ok(Math.abs((out[i] as AudioChunkIn).ptsUs - end) <= 1, `chunk ${i} starts at ${(out[i] as AudioChunkIn).ptsUs}, previous ends at ${end}`);
  }
}

test('contiguous chunks and sub-millisecond stamp jitter pass through unchanged', () => {
  const { out, filler } = collect();
  const ins = [chunk(1_000_000, 0.1), chunk(1_010_000, 0.2), chunk(1_020_400, 0.3), chunk(1_029_700, 0.4)];
  for (const c of ins) filler.write(c);
  assert.equal(out.length, 4);
  out.forEach((c, i) => assert.equal(c, ins[i]));
});

test('a lost chunk becomes silence of its exact length, and what follows keeps its timestamp', () => {
  const { out, filler } = collect();
  filler.write(chunk(0, 0.5));
  filler.write(chunk(10_000, 0.5));
  // 30 ms lost (three chunks), then audio resumes at its capture time.
  filler.write(chunk(50_000, 0.7));
  assert.equal(out.length, 4);
  const silence = out[2] as AudioChunkIn;
  assert.equal(silence.ptsUs, 20_000);
  assert.equal(framesOf(silence), 1440);
  assert.ok(new Float32Array(silence.data.buffer, silence.data.byteOffset, silence.data.length / 4).every((s) => s === 0));
  assert.equal((out[3] as AudioChunkIn).ptsUs, 50_000);
  assertContinuous(out);
});

test('an overlapping chunk loses only its overlap; one entirely inside the written audio is dropped', () => {
  const { out, filler } = collect();
  filler.write(chunk(0, 0.1));
  filler.write(chunk(5_000, 0.2)); // 5 ms overlap: 240 frames kept of 480
  filler.write(chunk(2_000, 0.3)); // ends at 12 ms, before the 15 ms written: dropped
  assert.equal(out.length, 2);
  assert.equal((out[1] as AudioChunkIn).ptsUs, 10_000);
  assert.equal(framesOf(out[1] as AudioChunkIn), 240);
  assertContinuous(out);
});

test('a gap longer than 5 s is left to the pipeline (a stalled page, not lost chunks)', () => {
  const { out, filler } = collect();
  filler.write(chunk(0, 0.1));
  filler.write(chunk(6_000_000, 0.1));
  assert.equal(out.length, 2);
  assert.equal((out[1] as AudioChunkIn).ptsUs, 6_000_000);
});
