import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PcmResampler } from '../../main/output/pcm-resampler.js';

/** A stereo sine (left f, right f/2) at `rate`, `seconds` long, interleaved. */
function sine(rate: number, f: number, seconds: number): Float32Array {
  const n = Math.round(rate * seconds);
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    out[i * 2] = 0.5 * Math.sin((2 * Math.PI * f * i) / rate);
    out[i * 2 + 1] = 0.5 * Math.sin((2 * Math.PI * (f / 2) * i) / rate);
  }
  return out;
}

test('44.1 kHz → 48 kHz: same duration, frequency, amplitude and phase in each channel, fed in uneven chunks', () => {
  const input = sine(44_100, 1000, 2);
  const r = new PcmResampler(44_100, 48_000, 2);
  const parts: Float32Array[] = [];
  for (let i = 0; i < input.length; ) {
    const n = 2 * (1 + ((i * 7919) % 1000)); // uneven chunk sizes, whole frames
    parts.push(r.push(input.subarray(i, i + n)));
    i += n;
  }
  parts.push(r.flush());
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  assert.equal(out.length / 2, 96_000);
  // Away from the edges every sample equals the ideal 48 kHz signal (no delay, no distortion).
  let maxErr = 0;
  for (let i = 100; i < 96_000 - 100; i++) {
    maxErr = Math.max(maxErr, Math.abs((out[i * 2] as number) - 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 48_000)));
    maxErr = Math.max(maxErr, Math.abs((out[i * 2 + 1] as number) - 0.5 * Math.sin((2 * Math.PI * 500 * i) / 48_000)));
  }
  assert.ok(maxErr < 0.005, `max error ${maxErr}`);
});
