/**
 * The duration of an Ogg Opus file read from its pages (what a dead handler's pipeline left on
 * disk) agrees with ffprobe's, also when the file was cut mid-page; non-Opus input gives null.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { oggOpusDurationNs } from '../../gst/ogg-duration.js';
import { ffprobe } from '../support/media.js';

const run = promisify(execFile);

test('Ogg Opus duration from its pages = ffprobe within 10 ms, whole or cut mid-page; other files → null', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ogg-dur-'));
  try {
    const whole = join(dir, 'whole.ogg');
    // 350 buffers of 1,000 samples of a tone at 48 kHz: 7.29 s
    await run('gst-launch-1.0', ['-q', '-e', 'audiotestsrc', 'num-buffers=350', 'samplesperbuffer=1000', '!', 'audio/x-raw,rate=48000,channels=2', '!', 'opusenc', '!', 'oggmux', '!', 'filesink', `location=${whole}`]);
    const wholeS = Number(await oggOpusDurationNs(whole)) / 1e9;
    const probed = Number((await ffprobe(whole)).format.duration);
    assert.ok(Math.abs(wholeS - 7.29) < 0.03, `${wholeS} s for 7.29 s of audio`);
    assert.ok(Math.abs(wholeS - probed) < 0.01, `pages ${wholeS} s vs ffprobe ${probed} s`);

    // Killed mid-write: the last page is incomplete and does not count.
    const bytes = await readFile(whole);
    const cut = join(dir, 'cut.ogg');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6) + 7));
    const cutS = Number(await oggOpusDurationNs(cut)) / 1e9;
    const cutProbed = Number((await ffprobe(cut)).format.duration);
    assert.ok(cutS > 3 && cutS < 5, `${cutS} s kept of ${wholeS}`);
    assert.ok(Math.abs(cutS - cutProbed) < 0.03, `cut: pages ${cutS} s vs ffprobe ${cutProbed} s`);

    const notOgg = join(dir, 'x.mp4');
    await writeFile(notOgg, Buffer.alloc(1000));
    assert.equal(await oggOpusDurationNs(notOgg), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
