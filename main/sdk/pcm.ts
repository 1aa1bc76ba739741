/** PCM helpers of the SDK sources: rtc-node hands out s16 frames, the transport takes float32. */

/** Interleaved s16 samples → interleaved float32 little-endian bytes. */
export function s16ToF32(samples: Int16Array): Buffer {
  // Typed arrays are host-endian: every platform Node supports for this (x64, arm64) is little-endian.
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = (samples[i] as number) / 32768;
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** `frames` frames of float32 silence with `channels` channels. */
export function silenceF32(frames: number, channels: number): Buffer {
  return Buffer.alloc(Math.max(0, frames) * channels * 4);
}

/** A black I420 picture (BT.709 limited range: Y 16, U/V 128). */
export function blackI420(width: number, height: number): Buffer {
  const r4 = (n: number): number => (n + 3) & ~3;
  const ySize = r4(width) * height;
  const cSize = r4(Math.ceil(width / 2)) * Math.ceil(height / 2);
  const buf = Buffer.alloc(ySize + 2 * cSize, 128);
  buf.fill(16, 0, ySize);
  return buf;
}
