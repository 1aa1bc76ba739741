/**
 * A pre-launched browser (WarmBrowser, the warm pool's unit) with real Chromium and GStreamer: which
 * pages it may take, and a recording in it at a size other than the one it was launched with —
 * the page keeps exactly the requested viewport (checked by its colour in the file), the file has
 * the requested resolution, and the browser and its profile are gone afterwards.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { EgressStatus, EncodingOptions } from '@livekit/protocol';
import { ChromiumHost, findChromium } from '../../main/capture/chromium-host.js';
import { WarmBrowser } from '../../main/capture/warm-browser.js';
import type { CaptureHostOptions } from '../../main/capture/capture-host.js';
import { ffprobe, videoStream } from '../support/media.js';
import { FIXTURE_PAGES_DIR, runWebEgress, tempDir, withServer } from '../support/web-egress.js';

const run = promisify(execFile);

/** Mean colour (r, g, b) of the frame at `t` seconds. */
async function meanColour(path: string, t: number): Promise<[number, number, number]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-ss', String(t), '-i', path, '-frames:v', '1', '-vf', 'scale=1:1:flags=area', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
  });
  return [stdout[0] ?? 0, stdout[1] ?? 0, stdout[2] ?? 0];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('pre-launched browser (warm pool)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
  });
  after(async () => {
    await tmp.remove();
  });

  it('takes only pages it can serve as launched: same settings, a page up to 1920×1080, no plain-http page off localhost', async () => {
    const warm = await WarmBrowser.launch({ workDir: join(tmp.path, 'fits'), insecure: false, sandbox: false, extraFlags: {}, bin: findChromium() });
    try {
      const host: CaptureHostOptions = { width: 1280, height: 720, framerate: 30, workDir: tmp.path, egressId: 'EG_x', insecure: false, sandbox: false, extraFlags: {} };
      assert.equal(warm.fits(host, 'http://127.0.0.1:8080/page'), true);
      assert.equal(warm.fits(host, 'http://localhost/page'), true);
      assert.equal(warm.fits(host, 'https://example.com/'), true);
      assert.equal(warm.fits({ ...host, width: 1920, height: 1080 }, 'https://example.com/'), true);
      // Needs --unsafely-treat-insecure-origin-as-secure at launch for getDisplayMedia.
      assert.equal(warm.fits(host, 'http://example.com/'), false);
      assert.equal(warm.fits({ ...host, width: 2560, height: 1440 }, 'https://example.com/'), false);
      assert.equal(warm.fits({ ...host, insecure: true }, 'https://example.com/'), false);
      assert.equal(warm.fits({ ...host, extraFlags: { 'lang': 'de' } }, 'https://example.com/'), false);
    } finally {
      await warm.close();
    }
    assert.equal(existsSync(join(tmp.path, 'fits')), false, 'profile removed');
  });

  for (const mode of ['warm', 'cold'] as const) {
    it(`records a page ${mode === 'warm' ? 'in the pre-launched browser at the requested size (not the size it was launched with)' : 'in a browser launched for it (the same viewport rules)'}`, async () => {
      await withServer(FIXTURE_PAGES_DIR, async (base) => {
        const warmDir = join(tmp.path, 'warm');
        const warm = mode === 'warm' ? await WarmBrowser.launch({ workDir: warmDir, insecure: false, sandbox: false, extraFlags: {}, bin: findChromium() }) : undefined;
        let host: ChromiumHost | null = null;
        const { info } = await runWebEgress({
          request: { url: `${base}viewport/?w=640&h=360`, options: { case: 'advanced', value: new EncodingOptions({ width: 640, height: 360, framerate: 30, videoBitrate: 800 }) } },
          stopAfterMs: 3000,
          tmpDir: tmp.path,
          hostFactory: (o) => (host = new ChromiumHost(o, warm)),
        });
        assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
        const h = host as ChromiumHost | null;
        assert.equal(h?.warm, mode === 'warm', 'the page opened in the pre-launched browser (warm) or its own (cold)');
        const browserPid = h?.pids()[0] as number;
        const loc = info.fileResults[0]?.location ?? '';
        const v = videoStream(await ffprobe(loc));
        assert.equal(v?.width, 640);
        assert.equal(v?.height, 360);
        for (const t of [0.1, 1.5, 2.8]) {
          const [r, g, b] = await meanColour(loc, t);
          assert.ok(g > 120 && r < 60 && b < 60, `frame at ${t} s is green (viewport exactly 640×360): rgb ${r},${g},${b}`);
        }
        assert.equal(alive(browserPid), false, 'browser gone with the egress');
        assert.equal(existsSync(warmDir), false, 'its profile removed');
      });
    });
  }

  it('a plain-http page off localhost (it needs a launch flag) gets a browser launched for it; the pre-launched one is closed', async () => {
    await withServer(FIXTURE_PAGES_DIR, async (base) => {
      // The IPv4-mapped IPv6 form of the loopback address is not "localhost" to Chromium: getDisplayMedia
      // there needs --unsafely-treat-insecure-origin-as-secure, which only a launch can set.
      const url = `${base.replace('127.0.0.1', '[::ffff:127.0.0.1]')}viewport/?w=640&h=360`;
      const warmDir = join(tmp.path, 'unfit');
      const warm = await WarmBrowser.launch({ workDir: warmDir, insecure: false, sandbox: false, extraFlags: {}, bin: findChromium() });
      const warmPid = warm.pid as number;
      let host: ChromiumHost | null = null;
      const { info } = await runWebEgress({
        request: { url, options: { case: 'advanced', value: new EncodingOptions({ width: 640, height: 360, framerate: 30, videoBitrate: 800 }) } },
        stopAfterMs: 2000,
        tmpDir: tmp.path,
        hostFactory: (o) => (host = new ChromiumHost(o, warm)),
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal((host as ChromiumHost | null)?.warm, false, 'launched its own browser');
      const [r, g, b] = await meanColour(info.fileResults[0]?.location ?? '', 1);
      assert.ok(g > 120 && r < 60 && b < 60, `recorded the page: rgb ${r},${g},${b}`);
      assert.equal(alive(warmPid), false, 'the pre-launched browser was closed');
      assert.equal(existsSync(warmDir), false, 'and its profile removed');
    });
  });
});
