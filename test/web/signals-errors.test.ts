import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { EgressStatus } from '@livekit/protocol';
import { ffprobe, videoStream } from '../support/media.js';
import { FIXTURE_PAGES_DIR, runCli, runWebEgress, tempDir, withServer } from '../support/web-egress.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Start/end signals, page and template errors, refused URLs. */

const run = promisify(execFile);
let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp.remove();
});

/** Mean RGB of the first decoded frame. */
async function firstFrameRgb(path: string): Promise<[number, number, number]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-frames:v', '1', '-vf', 'scale=8:8', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer' });
  const px = stdout as unknown as Buffer;
  const sum = [0, 0, 0];
  for (let i = 0; i < px.length; i += 3) for (let c = 0; c < 3; c++) sum[c] = (sum[c] ?? 0) + (px[i + c] ?? 0);
  const n = px.length / 3;
  return [(sum[0] ?? 0) / n, (sum[1] ?? 0) / n, (sum[2] ?? 0) / n];
}

describe('start/end signals', () => {
  it('await_start_signal: nothing before START_RECORDING; END_RECORDING completes the egress', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      const t0 = Date.now();
      const { info, updates } = await runWebEgress({
        request: { url: `${base}signal/?start=3000&end=8000`, awaitStartSignal: true },
        tmpDir: tmp.path,
        timeoutMs: 60_000,
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(info.details, 'End reason: Source closed');
      assert.ok(Date.now() - t0 < 40_000, 'ended by the page, not by the hard timeout');
      assert.deepEqual(
        updates.map((u) => EgressStatus[u.status]),
        ['EGRESS_ACTIVE', 'EGRESS_ENDING', 'EGRESS_COMPLETE'],
      );
      const loc = info.fileResults[0]?.location ?? '';
      const [r, g] = await firstFrameRgb(loc);
      assert.ok(g > 100 && r < 80, `first recorded frame is the post-signal green (r=${r.toFixed(0)} g=${g.toFixed(0)}), not the red shown before`);
      const duration = Number((await ffprobe(loc)).format.duration);
      assert.ok(Math.abs(duration - 5) <= 0.6, `recorded from START to END (~5 s), got ${duration}`);
    });
  });

  it('stopped while waiting for the start signal → ABORTED, "Start signal not received"', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}signal/?start=600000`, awaitStartSignal: true }, stopAtMs: 8000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_ABORTED);
      assert.equal(info.error, 'Start signal not received');
      assert.equal(info.errorCode, 412);
    });
  });
});

describe('page errors', () => {
  it('a page answering 404 → FAILED with "page load error: Not Found"', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}no-such-page/` }, stopAfterMs: 2000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.equal(info.error, 'page load error: Not Found');
      assert.equal(info.errorCode, 400);
    });
  });

  it('a page rendering div.error → FAILED with "template error: <its text>"', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}error/` }, stopAfterMs: 2000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.equal(info.error, 'template error: missing required params url and token');
    });
  });

  it('an unreachable host → FAILED with a page load error naming the net error', async () => {
    // A port that was just free: nothing listens there.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const { info } = await runWebEgress({ request: { url: `http://127.0.0.1:${port}/` }, stopAfterMs: 2000, tmpDir: tmp.path });
    assert.equal(info.status, EgressStatus.EGRESS_FAILED);
    assert.equal(info.error, 'page load error: net::ERR_CONNECTION_REFUSED');
  });

  for (const url of ['file:///etc/passwd', 'chrome://settings', 'javascript:alert(1)', 'not a url']) {
    it(`refuses ${url} before starting anything (CLI)`, async () => {
      const { code, last } = await runCli(['record', '--url', url, '--out', `${tmp.path}/refused/`], tmp.path);
      assert.equal(code, 1);
      assert.equal(last['status'], 'EGRESS_FAILED');
      assert.equal(last['error'], 'request has missing or invalid field: web url');
      assert.equal(existsSync(`${tmp.path}/refused`), false, 'no output directory created');
    });
  }

  it('the recording of a page with no audio still has a video stream at the requested size', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}error/`.replace('error/', 'signal/?start=0'), videoOnly: true }, stopAfterMs: 3000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const v = videoStream(await ffprobe(info.fileResults[0]?.location ?? ''));
      assert.equal(v?.width, 1280);
      assert.equal(v?.height, 720);
    });
  });
});
