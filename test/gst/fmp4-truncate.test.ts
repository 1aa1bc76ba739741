/**
 * An unfinished fragmented MP4 (the disk filled up or the muxer died mid-fragment) is cut after its
 * last complete fragment: it then decodes without errors and its container duration is what
 * fragmentedMp4DurationNs reads from the boxes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fragmentedMp4DurationNs, truncateFragmentsAfter, truncateToCompleteFragments } from '../../gst/fmp4-duration.js';
import { unfinishedDurationNs } from '../../gst/container-duration.js';
import { ffprobe } from '../support/media.js';
import { decodeErrors } from '../support/fault-checks.js';

const run = promisify(execFile);

test('fragmented MP4 cut mid-fragment: truncated to the last complete fragment, 0 decode errors, duration = boxes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmp4-cut-'));
  try {
    const whole = join(dir, 'whole.mp4');
    await run('gst-launch-1.0', ['-q', '-e', 'videotestsrc', 'num-buffers=150', 'pattern=ball', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 'x264enc', 'speed-preset=ultrafast', 'key-int-max=30', '!', 'mp4mux', 'fragment-duration=1000', '!', 'filesink', `location=${whole}`]);
    const bytes = await readFile(whole);
    // A muxer that never finished: no mfra, and the last fragment written only in part.
    const cut = join(dir, 'cut.mp4');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    const errorsBefore = await decodeErrors(cut);
    const removed = await truncateToCompleteFragments(cut);
    assert.ok(removed > 0, 'an incomplete fragment was cut');
    assert.equal(await decodeErrors(cut), 0, `decode errors: ${errorsBefore} before the cut`);
    const onDisk = Number(await fragmentedMp4DurationNs(cut)) / 1e9;
    const container = Number((await ffprobe(cut)).format.duration);
    assert.ok(onDisk >= 2 && onDisk < 5, `${onDisk} s kept`);
    assert.ok(Math.abs(container - onDisk) <= 0.1, `container ${container} s vs boxes ${onDisk} s`);
    // Idempotent, and a complete file is left alone.
    assert.equal(await truncateToCompleteFragments(cut), 0);
    const size = (await stat(whole)).size;
    assert.equal(await truncateToCompleteFragments(whole), 0);
    assert.equal((await stat(whole)).size, size);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a finished fragmented MP4 ended at an instant: every track keeps the samples before it, the rest is cut, the header duration (mehd) follows, 0 decode errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmp4-cut-at-'));
  try {
    const path = join(dir, 'whole.mp4');
    // Video and audio, as an egress writes them.
    await run('gst-launch-1.0', [
      '-q', '-e', 'mp4mux', 'name=mux', 'fragment-duration=1000', '!', 'filesink', `location=${path}`,
      'videotestsrc', 'num-buffers=300', 'pattern=ball', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 'x264enc', 'speed-preset=ultrafast', 'key-int-max=30', '!', 'mux.',
      'audiotestsrc', 'num-buffers=470', '!', 'audio/x-raw,rate=48000,channels=2', '!', 'avenc_aac', '!', 'mux.',
    ]);
    const whole = Number((await ffprobe(path)).format.duration);
    assert.ok(whole >= 9.9, `${whole} s written`);
    const removed = await truncateFragmentsAfter(path, 4_300_000_000n);
    assert.ok(removed > 0);
    const onDisk = Number(await fragmentedMp4DurationNs(path)) / 1e9;
    const probe = await ffprobe(path);
    assert.ok(onDisk >= 4.3 && onDisk <= 4.34, `ends with the sample holding 4.3 s: ${onDisk} s`);
    const [v, a] = [probe.streams.find((x) => x.codec_type === 'video'), probe.streams.find((x) => x.codec_type === 'audio')];
    assert.ok(Math.abs(Number(v?.duration) - 4.3) <= 0.034 && Math.abs(Number(a?.duration) - 4.3) <= 0.022, `video ${v?.duration} s, audio ${a?.duration} s`);
    assert.ok(Math.abs(Number(probe.format.duration) - onDisk) <= 0.1, `container ${probe.format.duration} s vs boxes ${onDisk} s`);
    assert.equal(await decodeErrors(path), 0);
    // The movie-extends header says the new length (players show it).
    const bytes = await readFile(path);
    const at = bytes.indexOf('mehd');
    assert.ok(at > 0, 'mehd present');
    const version = bytes.readUInt8(at + 4);
    const movieScale = (() => {
      const m = bytes.indexOf('mvhd');
      return bytes.readUInt8(m + 4) === 1 ? bytes.readUInt32BE(m + 24) : bytes.readUInt32BE(m + 16);
    })();
    const mehd = version === 1 ? Number(bytes.readBigUInt64BE(at + 8)) : bytes.readUInt32BE(at + 8);
    assert.ok(Math.abs(mehd / movieScale - onDisk) <= 0.05, `mehd ${mehd / movieScale} s vs ${onDisk} s`);
    // Nothing after the cut: nothing more to remove.
    assert.equal(await truncateFragmentsAfter(path, 4_300_000_000n), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a fragmented MP4 whose muxer got EOS before any sample (header only, unplayable) holds 0 s', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmp4-empty-'));
  try {
    const empty = join(dir, 'empty.mp4');
    await run('gst-launch-1.0', ['-q', '-e', 'audiotestsrc', 'num-buffers=0', '!', 'audio/x-raw,rate=48000', '!', 'avenc_aac', '!', 'mp4mux', 'fragment-duration=1000', '!', 'filesink', `location=${empty}`]);
    assert.ok((await stat(empty)).size > 0, 'the muxer wrote its header');
    await assert.rejects(ffprobe(empty), 'ffprobe cannot read it');
    assert.equal(await unfinishedDurationNs('mp4', empty), 0n);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
