/**
 * GstProcess.stop when EOS never completes. A stand-in for gst-launch (gstLaunchPath) reports
 * itself ready and then never exits on its own, as gst-launch does when GStreamer never posts EOS.
 * Outputs shown finished and an idle process: stop() ends it after the grace period and resolves.
 * A process still busy (a muxer finalising), or no evidence from the outputs: the EOS timeout runs
 * out and stop() rejects with PipelineFrozenError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GstProcess, PipelineFrozenError } from '../../gst/gst-process.js';

async function standIn(body: string): Promise<{ path: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'gst-stop-'));
  const path = join(dir, 'gst-launch-stand-in');
  // Ignores SIGINT like gst-launch -e waiting for an EOS that never comes.
  await writeFile(path, `#!/bin/bash\ntrap '' INT\necho 'Setting pipeline to PAUSED ...'\necho 'Pipeline is PREROLLING ...'\n${body}\n`);
  await chmod(path, 0o755);
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}

test('outputs finished and the process idle: ended after the grace period, stop() resolves', async () => {
  const s = await standIn('sleep 600');
  try {
    const gst = await GstProcess.start({ args: [], video: false, audio: false, gstLaunchPath: s.path });
    const t0 = Date.now();
    const exit = await gst.stop(20_000, { outputsFinished: () => true });
    const tookMs = Date.now() - t0;
    assert.ok(gst.endedAfterOutputsFinished);
    assert.equal(exit.signal, 'SIGTERM');
    assert.ok(tookMs < 6000, `ended ${tookMs} ms after the stop, not at the 20 s EOS timeout`);
  } finally {
    await s.dispose();
  }
});

/** Stops a stand-in running `body` and expects the EOS timeout to run out: PipelineFrozenError, not ended early. */
async function expectFrozenAtTimeout(body: string, timeoutMs: number, outputsFinished: () => boolean): Promise<void> {
  const s = await standIn(body);
  try {
    const gst = await GstProcess.start({ args: [], video: false, audio: false, gstLaunchPath: s.path });
    const t0 = Date.now();
    await assert.rejects(gst.stop(timeoutMs, { outputsFinished }), PipelineFrozenError);
    assert.ok(Date.now() - t0 >= timeoutMs);
    assert.equal(gst.endedAfterOutputsFinished, false);
  } finally {
    await s.dispose();
  }
}

test('a busy process is not ended early, even with the outputs finished: PipelineFrozenError at the timeout', async () => {
  await expectFrozenAtTimeout('while true; do :; done', 4000, () => true);
});

test('no evidence from the outputs: PipelineFrozenError at the timeout', async () => {
  await expectFrozenAtTimeout('sleep 600', 3000, () => false);
});
