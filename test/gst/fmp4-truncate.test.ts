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
import { fragmentedMp4DurationNs, truncateToCompleteFragments } from '../../gst/fmp4-duration.js';
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
