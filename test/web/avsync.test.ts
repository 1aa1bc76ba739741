import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EgressStatus } from '@livekit/protocol';
import { measureAvSync, measureAvSyncPrecise, type SyncReport } from '../support/media.js';
import { runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';

/**
 * A/V sync measured on real output: templates/avsync flashes and beeps at the same instant once a
 * second; the recording's flash and beep onsets must line up (|video − audio| p80 ≤ 40 ms) and stay
 * lined up (drift between the first and the last 10 s ≤ 10 ms) over 60 s.
 */

let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp.remove();
});

describe('A/V sync', () => {
  it('60 s of flash+beep: offset p80 ≤ 40 ms, drift ≤ 10 ms', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info, controller } = await runWebEgress({ request: { url: `${base}avsync/` }, stopAfterMs: 60_000, tmpDir: tmp.path, timeoutMs: 120_000 });
      const st = controller.transportStats();
      process.stdout.write(`# transport: frames written ${st?.videoFramesWritten} repeated ${st?.videoFramesRepeated} dropped ${st?.videoFramesDropped}\n`);
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const loc = info.fileResults[0]?.location ?? '';
      const ms = (x: number): string => `${(x * 1000).toFixed(1)} ms`;
      const fmt = (r: SyncReport): string =>
        `pairs=${r.pairs} flashes=${r.flashes} beeps=${r.beeps} p50=${ms(r.p50)} p80=${ms(r.p80)} max=${ms(r.max)} drift=${ms(r.drift)} driftFit=${ms(r.driftFit)} mean=${ms(r.offsets.reduce((a, b) => a + b, 0) / Math.max(1, r.offsets.length))}`;
      // Whole-frame flash detection (quantised to 33 ms) for the record, and the clock-bar reading
      // (sub-frame) that the assertions use.
      process.stdout.write(`# avsync (flash frames): ${fmt(await measureAvSync(loc))}\n`);
      const r = await measureAvSyncPrecise(loc, 1280);
      const summary = fmt(r);
      process.stdout.write(`# avsync (clock bar): ${summary}\n`);
      assert.ok(r.pairs >= 55, `found flash/beep pairs for most seconds (${summary})`);
      assert.ok(r.p80 <= 0.04, `offset p80 ≤ 40 ms (${summary})`);
      assert.ok(Math.abs(r.drift) <= 0.01, `drift ≤ 10 ms (${summary})`);
      assert.ok(r.flashes >= 55, `the flashes are in the video (${summary})`);
    });
  });
});
