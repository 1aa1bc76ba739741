/**
 * bench/worker-start: request → first frame of a web egress through `egress serve` (real
 * livekit-server v1.13.5 + Redis), with and without the warm pool (`browser_pool_size`). For each
 * mode a worker is started and N short 720p30 recordings of the demo page run one after the other
 * (each stopped 2 s after ACTIVE; with the pool, the next one starts once the pool is full again and
 * the machine has settled 1.5 s). Printed per run and as p50:
 *   - worker: the worker's `StartEgress received` log line → the file's started_at (the recording's
 *     first frame) — what this service adds;
 *   - API: startWebEgress called → the same first frame (includes livekit-server's worker selection).
 *
 *   npm run -s build && node dist/bench/worker-start.js [--n 5] [--modes cold,warm]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EgressStatus } from 'livekit-server-sdk';
import { fileOut, startEnv, waitStatus } from '../test/service/common.js';
import { startWorker, waitFor, type WorkerProc } from '../test/service/worker-harness.js';
import { sleep } from '../test/harness/redis.js';
import { setLogLevel } from '../main/log.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function poolReady(w: WorkerProc): Promise<number> {
  const m = /^livekit_egress_browser_pool_ready(?:\{[^}]*\})? (\d+)/m.exec(await w.metrics());
  return Number(m?.[1] ?? -1);
}

async function main(): Promise<void> {
  setLogLevel('error');
  const { values } = parseArgs({ options: { n: { type: 'string', default: '5' }, modes: { type: 'string', default: 'cold,warm' } } });
  const n = Number(values.n);
  const env = await startEnv();
  try {
    for (const mode of (values.modes ?? 'cold,warm').split(',')) {
      const w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, `tmp-${mode}`), cwd: env.dir, name: mode, extra: { browser_pool_size: mode === 'warm' ? 1 : 0 } });
      const worker: number[] = [];
      const api: number[] = [];
      try {
        for (let i = 0; i < n; i++) {
          if (mode === 'warm') await waitFor('pool ready', async () => ((await poolReady(w)) === 1 ? true : undefined), 60_000);
          await sleep(1500);
          const t0 = Date.now();
          const started = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, `${mode}-${i}.mp4`)));
          await waitStatus(env.api, started.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
          await sleep(2000);
          await env.api.stopEgress(started.egressId);
          const done = await waitStatus(env.api, started.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
          const firstFrameMs = Number(done.fileResults[0]?.startedAt ?? 0n) / 1e6;
          const received = new RegExp(`\\[([^\\]]+)\\] \\[info\\] \\(service\\) StartEgress received \\[egress:${started.egressId}\\]`).exec(w.logs());
          const receivedMs = received ? Date.parse(received[1] as string) : NaN;
          worker.push(firstFrameMs - receivedMs);
          api.push(firstFrameMs - t0);
          process.stdout.write(`${mode} #${i + 1}: worker received → first frame ${Math.round(firstFrameMs - receivedMs)} ms, API call → first frame ${Math.round(firstFrameMs - t0)} ms\n`);
        }
      } finally {
        await w.kill();
      }
      process.stdout.write(`${mode}: worker received → first frame p50 ${Math.round(median(worker))} ms (min ${Math.round(Math.min(...worker))}, max ${Math.round(Math.max(...worker))}); API call → first frame p50 ${Math.round(median(api))} ms, over ${n} runs\n`);
    }
  } finally {
    await env.close();
  }
}

await main();
