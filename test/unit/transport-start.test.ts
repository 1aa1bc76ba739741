/**
 * MediaTransport.start with alignStartToFrames: the start moves onto the captured frames' grid (later,
 * by less than a frame: nothing from before a start signal is recorded), so the frame at the start is written at running
 * time 0 and every later frame on a whole slot. Without the option the start is taken as given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { MediaTransport, frameSize, type VideoFrameIn } from '../../gst/media-transport.js';

const FRAME_US = 1e6 / 30;

function frame(ptsUs: number): VideoFrameIn {
  return { ptsUs, format: 'I420', width: 16, height: 16, data: Buffer.alloc(frameSize('I420', 16, 16)) };
}

function transport(align: boolean): { t: MediaTransport; close: () => void } {
  const video = new PassThrough();
  video.resume();
  const t = new MediaTransport({ video, audio: null, framerate: 30, alignStartToFrames: align, repeatAfterMs: 60_000 });
  return { t, close: () => t.end(0) };
}

test('the start moves later to the next point of the frame grid, by less than a frame', () => {
  const base = 10_000_000;
  for (const [askedUs, wantUs] of [
    [base, base],
    [base + 5_000, base + FRAME_US],
    [base + 16_000, base + FRAME_US],
    [base + 30_000, base + FRAME_US],
    [base + 5 * FRAME_US + 1_000, base + 6 * FRAME_US],
    [base + 5 * FRAME_US, base + 5 * FRAME_US],
    [base - 12_000, base],
    [base - 40_000, base - FRAME_US],
  ] as const) {
    const { t, close } = transport(true);
    try {
      t.pushVideo(frame(base));
      const got = t.start(askedUs);
      assert.ok(Math.abs(got - wantUs) < 0.01, `asked ${askedUs - base}, got ${got - base}, want ${wantUs - base}`);
      assert.ok(got >= askedUs - 0.01 && got - askedUs < FRAME_US, `moved by ${got - askedUs}`);
      assert.equal(t.startUs, got);
    } finally {
      close();
    }
  }
});

test('no frame yet, or the option off: the start is the one asked for', () => {
  const a = transport(true);
  assert.equal(a.t.start(1_234_567), 1_234_567);
  a.close();
  const b = transport(false);
  b.t.pushVideo(frame(1_000_000));
  assert.equal(b.t.start(1_020_000), 1_020_000);
  b.close();
});

test('a second start changes nothing', () => {
  const { t, close } = transport(true);
  t.pushVideo(frame(2_000_000));
  const first = t.start(2_010_000);
  assert.equal(t.start(2_500_000), first);
  close();
});
