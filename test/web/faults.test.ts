import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EgressStatus } from '@livekit/protocol';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { alive, runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
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

/** The browser's helper processes of one `--type` (they share its process group); the page's renderer for 'renderer'. */
function browserHelpers(browserPid: number, type: 'renderer' | 'gpu-process'): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      // Zygote-forked helpers retitle themselves: their arguments are one space-separated string.
      const args = readFileSync(`/proc/${n}/cmdline`, 'utf8').split(/[\0 ]/);
      if (pgid !== browserPid || !args.includes(`--type=${type}`)) continue;
      // Browser UI pages (headless keeps a WebUI renderer) and extensions are not the page.
      if (args.some((a) => a === '--top-chrome-webui' || a === '--extension-process')) continue;
      out.push(Number(n));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe('faults', () => {
  // The in-browser encode path (the page encodes with WebCodecs) under the same guarantees, for the
  // process whose death takes its encoder with it.
  const cases = [
    { victim: 'gstreamer', path: 'x264' },
    { victim: 'browser', path: 'x264' },
    { victim: 'renderer', path: 'x264' },
    { victim: 'renderer', path: 'browser' },
  ] as const;
  for (const { victim, path } of cases) {
    it(`SIGKILL of the ${victim} mid-recording${path === 'browser' ? ' (video encoded in the page)' : ''} → FAILED at once, the file ends at the fault and plays`, async () => {
      await withServer(TEMPLATES_DIR, async (base) => {
        let pids: number[] = [];
        let killedAt = 0;
        const { info } = await runWebEgress({
          request: { url: `${base}demo/` },
          tmpDir: tmp.path,
          timeoutMs: 60_000,
          config: `video_encode_path: ${path}`,
          onActive: (c) => {
            pids = c.pids();
            setTimeout(() => {
              const all = c.pids();
              // pids(): browser first, GStreamer last.
              const targets = victim === 'renderer' ? browserHelpers(all[0] ?? 0, 'renderer') : [victim === 'browser' ? all[0] : all[all.length - 1]];
              assert.ok(targets.length > 0 && targets.every((p) => p), `${victim} pid`);
              killedAt = Date.now();
              for (const pid of targets) process.kill(pid as number, 'SIGKILL');
            }, 5000);
          },
        });
        const finalAfterMs = Date.now() - killedAt;
        assert.equal(info.status, EgressStatus.EGRESS_FAILED);
        assert.ok(info.error.length > 0, 'error set');
        assert.match(info.error, victim === 'gstreamer' ? /pipeline failed/ : victim === 'renderer' ? /renderer crashed/ : /chrome|capture/i);
        const file = info.fileResults[0];
        assert.ok(file?.location, 'file result reported');
        const p = await ffprobe(file.location);
        assert.ok(videoStream(p) && audioStream(p), 'both streams present');
        const decoded = await decodedDuration(file.location);
        const reported = Number(file.duration) / 1e9;
        const container = Number(p.format.duration);
        console.log(`# ${victim} killed: FAILED (${info.error}) ${finalAfterMs} ms after the kill; reported ${reported.toFixed(2)} s, container ${container.toFixed(2)} s, decoded ${decoded.toFixed(2)} s`);
        assert.ok(decoded >= 2, `decodes ${decoded} s of media`);
        // Nothing is appended after the fault: no frozen picture or silence padding the file.
        assert.ok(Math.abs(container - reported) <= 0.2, `container ${container.toFixed(2)} s vs reported ${reported.toFixed(2)} s`);
        const fileEndsAt = Number(file.startedAt) / 1e6 + container * 1000;
        assert.ok(fileEndsAt <= killedAt + 500, `the file ends at the fault, not ${(fileEndsAt - killedAt).toFixed(0)} ms after it`);
        // No wait on a dead process (a CDP call to a crashed renderer used to take its 30 s timeout).
        assert.ok(finalAfterMs <= 10_000, `final status ${finalAfterMs} ms after the kill`);
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(alive(pids), [], 'no browser or GStreamer process left');
      });
    });
  }

  it('SIGKILL of the browser\'s GPU process: Chromium brings it back and the recording goes on (COMPLETE, no frozen picture)', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({
        request: { url: `${base}demo/` },
        tmpDir: tmp.path,
        stopAfterMs: 12_000,
        timeoutMs: 60_000,
        onActive: (c) => {
          setTimeout(() => {
            const gpu = browserHelpers(c.pids()[0] ?? 0, 'gpu-process');
            assert.ok(gpu.length > 0, 'GPU process pid');
            for (const pid of gpu) process.kill(pid, 'SIGKILL');
          }, 4000);
        },
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const file = info.fileResults[0];
      assert.ok(file?.location, 'file result reported');
      const p = await ffprobe(file.location);
      const reported = Number(file.duration) / 1e9;
      const container = Number(p.format.duration);
      assert.ok(Math.abs(container - reported) <= 0.2, `container ${container.toFixed(2)} s vs reported ${reported.toFixed(2)} s`);
      // The demo page animates every frame: a picture still for 2 s means the capture froze (a busy
      // machine may hold a frame for a moment; a capture that died would hold it to the end).
      const { stderr } = await run('ffmpeg', ['-v', 'info', '-i', file.location, '-vf', 'freezedetect=n=0.001:d=2', '-an', '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
      const freezes = [...stderr.matchAll(/freeze_start: ([\d.]+)/g)].map((m) => Number(m[1]));
      console.log(`# GPU process killed: COMPLETE, reported ${reported.toFixed(2)} s, container ${container.toFixed(2)} s, freezes at ${freezes.join(', ') || 'none'}`);
      assert.deepEqual(freezes, [], 'no frozen picture after the GPU process came back');
    });
  });
});
