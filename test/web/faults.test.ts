import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EgressStatus } from '@livekit/protocol';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { alive, runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Faults mid-recording: whatever dies, the egress ends FAILED with a clear error and what was
 * recorded until then is a playable file at the reported location; no process is left behind.
 */

const run = promisify(execFile);
let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp.remove();
});

/** Decodes the whole file; throws if it is not playable. Returns the decoded duration in seconds. */
async function decodedDuration(path: string): Promise<number> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-stats', '-i', path, '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
  const times = [...stderr.matchAll(/time=(\d+):(\d+):(\d+\.\d+)/g)];
  const t = times[times.length - 1];
  return t ? Number(t[1]) * 3600 + Number(t[2]) * 60 + Number(t[3]) : 0;
}

describe('faults', () => {
  for (const victim of ['gstreamer', 'browser'] as const) {
    it(`SIGKILL of the ${victim} mid-recording → FAILED, recording so far playable`, async () => {
      await withServer(TEMPLATES_DIR, async (base) => {
        let pids: number[] = [];
        const { info } = await runWebEgress({
          request: { url: `${base}demo/` },
          tmpDir: tmp.path,
          timeoutMs: 60_000,
          onActive: (c) => {
            pids = c.pids();
            setTimeout(() => {
              const all = c.pids();
              // pids(): browser first, GStreamer last.
              const pid = victim === 'browser' ? all[0] : all[all.length - 1];
              assert.ok(pid, 'victim pid');
              process.kill(pid, 'SIGKILL');
            }, 5000);
          },
        });
        assert.equal(info.status, EgressStatus.EGRESS_FAILED);
        assert.ok(info.error.length > 0, 'error set');
        assert.match(info.error, victim === 'browser' ? /chrome|capture/i : /pipeline failed/);
        const file = info.fileResults[0];
        assert.ok(file?.location, 'file result reported');
        const p = await ffprobe(file.location);
        assert.ok(videoStream(p) && audioStream(p), 'both streams present');
        const decoded = await decodedDuration(file.location);
        assert.ok(decoded >= 3, `decodes ${decoded} s of media`);
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(alive(pids), [], 'no browser or GStreamer process left');
      });
    });
  }
});
