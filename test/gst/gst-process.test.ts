import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GstLaunchError, GstProcess, PipelineFrozenError } from '../../gst/gst-process.js';
import { buildLaunchArgs } from '../../gst/output-pipeline.js';
import { gdpBufferHeader, gdpCaps, gdpStreamStart, gdpTimeSegment } from '../../gst/gdp.js';
import { MediaTransport } from '../../gst/media-transport.js';
import { audioStream, countedFps, ffprobe, videoStream } from '../support/media.js';
import { REPO_ROOT } from '../support/web-egress.js';

/** The GStreamer side on its own: real gst-launch-1.0 fed by our GDP transport, and its supervisor. */

const FIXTURES = join(REPO_ROOT, 'test/fixtures/gst');

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('GstProcess supervision', () => {
  it('a pipeline that fails to build rejects the start with gst-launch’s error', async () => {
    await assert.rejects(
      GstProcess.start({ args: ['nosuchelement', '!', 'fakesink'], video: false, audio: false, gstLaunchPath: join(FIXTURES, 'fake-gst-crash.sh') }),
      (e: unknown) => e instanceof GstLaunchError && /erroneous pipeline/.test(e.message),
    );
  });

  it('a real gst-launch with a bad element rejects the start', async () => {
    await assert.rejects(GstProcess.start({ args: ['nosuchelement', '!', 'fakesink'], video: false, audio: false }), GstLaunchError);
  });

  it('a pipeline that never reaches EOS → PipelineFrozenError and the whole process group is killed', async () => {
    const gst = await GstProcess.start({ args: [], video: true, audio: false, gstLaunchPath: join(FIXTURES, 'fake-gst-hang.sh') });
    const pid = gst.pid;
    assert.ok(alive(pid));
    const t0 = Date.now();
    await assert.rejects(gst.stop(500), PipelineFrozenError);
    assert.ok(Date.now() - t0 < 15_000, 'escalated to SIGKILL within the deadlines');
    assert.equal(alive(pid), false, 'process gone');
  });

  it('SIGKILL from outside emits died once, with the signal', async () => {
    const gst = await GstProcess.start({ args: [], video: true, audio: false, gstLaunchPath: join(FIXTURES, 'fake-gst-hang.sh') });
    const died = new Promise<NodeJS.Signals | null>((resolve) => gst.once('died', (i) => resolve(i.signal)));
    process.kill(-(gst.pid as number), 'SIGKILL');
    assert.equal(await died, 'SIGKILL');
  });
});

describe('GDP transport into a real pipeline', () => {
  it('irregular, timestamped frames and audio become a constant-rate MP4 whose duration follows the timestamps', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gst-test-'));
    try {
      const location = join(dir, 'out.mp4');
      const args = buildLaunchArgs({
        video: { width: 320, height: 240, framerate: 30, bitrateKbps: 500, profile: 'main', keyFrameIntervalS: 0, threads: 1 },
        audio: { codec: 'aac', bitrateKbps: 128, sampleRate: 44100 },
        file: { container: 'mp4', location },
      });
      const gst = await GstProcess.start({ args, video: true, audio: true });
      const transport = new MediaTransport({ video: gst.videoInput, audio: gst.audioInput, framerate: 30, now: () => 0 });
      const t0 = 1_000_000_000; // capture clock, µs
      transport.start(t0);
      // 4 s of video at an irregular ~12 fps and 4 s of 20 ms audio chunks.
      const frame = Buffer.alloc(320 * 240 * 1.5, 128);
      for (let t = 0; t < 4_000_000; t += 70_000 + ((t / 70_000) % 3) * 10_000) {
        transport.pushVideo({ ptsUs: t0 + t, format: 'I420', width: 320, height: 240, data: frame });
      }
      const chunk = Buffer.alloc(960 * 2 * 4);
      for (let t = 0; t < 4_000_000; t += 20_000) transport.pushAudio({ ptsUs: t0 + t, sampleRate: 48000, channels: 2, data: chunk });
      transport.setStop(t0 + 4_000_000);
      transport.end();
      const exit = await gst.stop(30_000);
      assert.equal(exit.code, 0, exit.lastLines.join('\n'));
      const p = await ffprobe(location);
      assert.equal(videoStream(p)?.width, 320);
      assert.equal(audioStream(p)?.sample_rate, '44100');
      const counted = await countedFps(location);
      assert.ok(Math.abs(counted.fps - 30) < 0.5, `constant 30 fps out of irregular input (${counted.fps})`);
      assert.ok(Math.abs(Number(p.format.duration) - 4) < 0.15, `duration follows the timestamps (${p.format.duration})`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('frames that stop arriving long before the stop (a loaded machine): the video track still lasts until the stop', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gst-test-'));
    try {
      const location = join(dir, 'gap.mp4');
      const args = buildLaunchArgs({
        video: { width: 320, height: 240, framerate: 30, bitrateKbps: 500, profile: 'main', keyFrameIntervalS: 0, threads: 1 },
        audio: null,
        file: { container: 'mp4', location },
      });
      const gst = await GstProcess.start({ args, video: true, audio: false });
      const transport = new MediaTransport({ video: gst.videoInput, audio: null, framerate: 30, now: () => 0 });
      const t0 = 1_000_000_000;
      transport.start(t0);
      const frame = Buffer.alloc(320 * 240 * 1.5, 128);
      // 1 s of frames, then none (dropped while the pipeline fell behind) until the stop at 4 s.
      for (let t = 0; t < 1_000_000; t += 33_333) transport.pushVideo({ ptsUs: t0 + t, format: 'I420', width: 320, height: 240, data: frame });
      transport.setStop(t0 + 4_000_000);
      transport.end();
      const exit = await gst.stop(30_000);
      assert.equal(exit.code, 0, exit.lastLines.join('\n'));
      const v = videoStream(await ffprobe(location));
      // Without the copy one frame before the stop, videorate ended the track at the gap's midpoint (2.5 s).
      assert.ok(Math.abs(Number(v?.duration) - 4) <= 0.07, `video track ${v?.duration} s for a stop at 4 s`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gdp packets have the 62-byte header layout gdpdepay reads', () => {
    const h = gdpBufferHeader(10, 123_456_789n, 33_333_333n);
    assert.equal(h.length, 62);
    assert.equal(h[0], 1);
    assert.equal(h.readUInt16BE(4), 1);
    assert.equal(h.readUInt32BE(6), 10);
    assert.equal(h.readBigUInt64BE(10), 123_456_789n);
    assert.equal(h.readBigUInt64BE(18), 33_333_333n);
    assert.equal(gdpCaps('video/x-raw').readUInt16BE(4), 2);
    assert.equal(gdpStreamStart('x').readUInt16BE(4), 64 + ((40 << 8) | 0x0e));
    assert.equal(gdpTimeSegment().readUInt16BE(4), 64 + ((70 << 8) | 0x0e));
  });
});
