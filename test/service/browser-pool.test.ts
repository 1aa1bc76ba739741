/**
 * The warm pool (`browser_pool_size`) through a real worker, livekit-server v1.13.5 and Redis: a web
 * egress takes the pooled handler and its pre-launched browser and records a correct file; the pool
 * refills; a pooled browser killed while idle is replaced; after the worker stops no Chromium of it
 * is left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgressStatus } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { sleep } from '../harness/redis.js';
import { ffprobe, videoStream } from '../support/media.js';
import { setLogLevel } from '../../main/log.js';
import { fileOut, startEnv, waitStatus, type Env } from './common.js';
import { pidsMentioning, startWorker, waitFor, type WorkerProc } from './worker-harness.js';

setLogLevel('error');
const binary = livekitBinary();

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function ppid(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Chromium processes (browser and helpers) whose command line mentions `text`. */
const chromiumMentioning = (text: string): number[] => pidsMentioning(text).filter((p) => /chrom/i.test(comm(p)));

/** The pooled browsers' main processes: Chromium started with a profile under `<tmp_dir>/browser-pool/`, whose parent is not Chromium. */
const pooledBrowsers = (tmpDir: string): number[] => chromiumMentioning(join(tmpDir, 'browser-pool')).filter((p) => !/chrom/i.test(comm(ppid(p))));

/** `livekit_egress_browser_pool_ready` from the worker's /metrics. */
async function poolReady(w: WorkerProc): Promise<number> {
  const m = /^livekit_egress_browser_pool_ready(?:\{[^}]*\})? (\d+)/m.exec(await w.metrics());
  return Number(m?.[1] ?? -1);
}

describe('browser pool (browser_pool_size)', { skip: binary ? false : 'livekit-server not built: bash scripts/install-livekit.sh' }, () => {
  let env: Env;
  before(async () => {
    env = await startEnv();
  });
  after(async () => {
    await env?.close();
  });

  test('a web egress records in a pooled browser, the pool refills and replaces a killed idle browser, and nothing is left after the worker stops', async () => {
    const tmpDir = join(env.dir, 'tmp-pool');
    const w = await startWorker({ redisPort: env.redis.port, tmpDir, cwd: env.dir, name: 'pool', extra: { browser_pool_size: 1 } });
    try {
      const first = await waitFor('a pooled browser ready', async () => ((await poolReady(w)) === 1 && pooledBrowsers(tmpDir).length === 1 ? pooledBrowsers(tmpDir)[0] : undefined), 30_000);
      assert.match(await w.metrics(), /^livekit_egress_browser_pool_rss_bytes(\{[^}]*\})? [1-9]\d{6,}/m, 'idle pool memory reported');

      // Killed while idle: replaced by a new pooled browser.
      process.kill(first, 'SIGKILL');
      const second = await waitFor('the killed pooled browser replaced', async () => {
        const b = pooledBrowsers(tmpDir);
        return (await poolReady(w)) === 1 && b.length === 1 && b[0] !== first ? b[0] : undefined;
      }, 30_000);
      assert.match(w.logs(), /idle handler \d+ exited/);

      // A web egress takes it: the file is right, and the browser that recorded it was the pooled one.
      const out = join(env.dir, 'pooled.mp4');
      const started = await env.api.startWebEgress(env.pageUrl, fileOut(out));
      await waitStatus(env.api, started.egressId, EgressStatus.EGRESS_ACTIVE);
      assert.match(w.logs(), new RegExp(`egress takes a pooled handler \\(pid \\d+\\) \\[egress:${started.egressId}\\]`));
      assert.match(w.logs(), new RegExp(`page opens in a pre-launched browser \\(pid ${second}\\) \\[egress:${started.egressId}\\]`));
      await sleep(3000);
      await env.api.stopEgress(started.egressId);
      const done = await waitStatus(env.api, started.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
      const file = done.fileResults[0];
      assert.ok(file && existsSync(file.location), `file delivered: ${JSON.stringify(file?.toJson())}`);
      const probe = await ffprobe(file.location);
      const v = videoStream(probe);
      assert.equal(v?.width, 1280);
      assert.equal(v?.height, 720);
      const duration = Number(probe.format.duration);
      assert.ok(duration >= 2.5 && duration <= 10, `duration ${duration} s`);
      assert.ok(Math.abs(duration - Number(file.duration) / 1e9) <= 0.2, `container ${duration} s vs reported ${Number(file.duration) / 1e9} s`);
      assert.ok(probe.streams.some((s) => s.codec_type === 'audio'), 'audio stream');

      // The browser that served the egress is gone with it (and its profile); the pool has a new one.
      await waitFor('the used browser gone', () => (chromiumMentioning(join(tmpDir, 'browser-pool')).includes(second) ? undefined : true), 15_000);
      const third = await waitFor('the pool refilled', async () => {
        const b = pooledBrowsers(tmpDir);
        return (await poolReady(w)) === 1 && b.length === 1 && b[0] !== second ? b[0] : undefined;
      }, 30_000);
      assert.ok(third > 0);
      assert.equal(readdirSync(join(tmpDir, 'browser-pool')).length, 1, 'only the idle browser keeps a profile');

      // Stopping the worker closes the idle browser: no Chromium of this worker outlives it.
      w.signal('SIGTERM');
      const exit = await Promise.race([w.exited, sleep(20_000).then(() => null)]);
      assert.ok(exit, 'worker exited after SIGTERM');
      await waitFor('no Chromium left', () => (chromiumMentioning(tmpDir).length === 0 ? true : undefined), 10_000);
      assert.deepEqual(existsSync(join(tmpDir, 'browser-pool')) ? readdirSync(join(tmpDir, 'browser-pool')) : [], [], 'pool profiles removed');
    } finally {
      await w.kill();
    }
  });
});
