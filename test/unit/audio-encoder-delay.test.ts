/**
 * The audio encoder's delay is cancelled in the transport: a sample captured at running time t is
 * written at t − delay, so a player, which plays the encoder's priming samples first, hears it at t.
 * The delays per codec are the ones measured for the encoders the pipeline runs (output-pipeline.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaTransport, type AudioChunkOut } from '../../gst/media-transport.js';
import { audioEncoderDelayUs } from '../../gst/output-pipeline.js';

test('encoder delays: voaacenc 1600 samples, lamemp3enc 1105, Opus none (its pre-skip is in the container)', () => {
  assert.equal(Math.round(audioEncoderDelayUs({ codec: 'aac', bitrateKbps: 128, sampleRate: 48000 })), 33_333);
  assert.equal(Math.round(audioEncoderDelayUs({ codec: 'aac', bitrateKbps: 128, sampleRate: 44100 })), 36_281);
  assert.equal(Math.round(audioEncoderDelayUs({ codec: 'mp3', bitrateKbps: 128, sampleRate: 48000 })), 23_021);
  assert.equal(audioEncoderDelayUs({ codec: 'opus', bitrateKbps: 128, sampleRate: 44100 }), 0);
});

test('audio is written earlier by the delay; what would fall before the start is cut', () => {
  const written: AudioChunkOut[] = [];
  const t = new MediaTransport({ video: null, audio: (c) => written.push(c), framerate: 30, audioEncoderDelayUs: 20_000 });
  const start = 5_000_000;
  t.start(start);
  // 10 ms chunks of mono 48 kHz from the start on.
  const chunk = (ptsUs: number) => ({ ptsUs, sampleRate: 48000, channels: 1, data: Buffer.alloc(480 * 4) });
  for (let i = 0; i < 5; i++) t.pushAudio(chunk(start + i * 10_000));
  // The first two chunks (0–20 ms) fall before 0 once moved; the third opens the audio at 0.
  assert.equal(written.length, 3);
  assert.deepEqual(
    written.map((c) => Number(c.ptsNs) / 1e6),
    [0, 10, 20],
  );
  t.end(0);
});
