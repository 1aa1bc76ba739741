/**
 * Admission and overload end to end, through livekit-server v1.13.5 + Redis with the
 * real worker: a burst of 20 concurrent StartEgress against one worker and against two, the CPU
 * overload drain (a CPU hog), the CPU kill after the drain's grace, and the memory kill (low
 * max_memory).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { EgressStatus, EncodingOptionsPreset, type EgressInfo } from 'livekit-server-sdk';
import { WebEgressRequest } from '@livekit/protocol';
import { livekitBinary } from '../harness/livekit.js';
import { sleep } from '../harness/redis.js';
import { StaticServer } from '../../main/capture/static-server.js';
import { DEFAULT_AUDIO_WEB_CPU_COST, DEFAULT_MAX_CPU_UTILIZATION, DEFAULT_WEB_CPU_COST } from '../../main/config/defaults.js';
import { parseConfig } from '../../main/config/index.js';
import { costOf } from '../../main/request/index.js';
import { setLogLevel } from '../../main/log.js';
import { commOf } from '../../main/service/proc.js';
import { FIXTURE_PAGES_DIR } from '../support/web-egress.js';
import { assertFaultedFile } from '../support/fault-checks.js';
import { fileOut, infoOf, startEnv, waitStatus, type Env } from './common.js';
import { pidsMentioning, startWorker, waitFor, type WorkerProc } from './worker-harness.js';

setLogLevel('error');
const binary = livekitBinary();

/** How many web egresses of `cost` one worker admits in a burst (Monitor's rule: all cores while idle, then cores × max_util − Σ reservations). */
function burstCapacity(cores: number, cost: number, maxUtil: number): number {
  let n = 0;
  for (;;) {
    const available = n === 0 ? cores : cores * maxUtil - n * cost;
    if (available < cost) return n;
    n++;
  }
}

/** `capture frames: in X, written W, repeated R, dropped D [egress:ID]` from the handler's log. */
function frameCounts(logs: string, id: string): { in: number; dropped: number } | null {
  const m = new RegExp(`capture frames: in (\\d+), written \\d+, repeated \\d+, dropped (\\d+) \\[egress:${id}\\]`).exec(logs);
  return m ? { in: Number(m[1]), dropped: Number(m[2]) } : null;
}

interface BurstOutcome {
  accepted: EgressInfo[];
  refused: string[];
}

async function fireBurst(env: Env, n: number, tag: string): Promise<BurstOutcome> {
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, `${tag}-${i}.mp4`)))));
  const accepted: EgressInfo[] = [];
  const refused: string[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') accepted.push(s.value);
    else {
      const e = s.reason as { code?: string; status?: number; message?: string };
      refused.push(`${e.status ?? '?'} ${e.code ?? '?'}: ${e.message ?? String(s.reason)}`);
    }
  }
  return { accepted, refused };
}

function startHogs(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

describe('admission and overload (livekit-server + worker)', { skip: binary ? false : 'livekit-server not built: bash scripts/install-livekit.sh' }, () => {
  let env: Env;
  const workers: WorkerProc[] = [];
  const hogs: ChildProcess[] = [];
  const cores = os.availableParallelism();
  const defaults = { web_cpu_cost: DEFAULT_WEB_CPU_COST, audio_web_cpu_cost: DEFAULT_AUDIO_WEB_CPU_COST };

  before(async () => {
    env = await startEnv();
  });

  after(async () => {
    for (const h of hogs) h.kill('SIGKILL');
    for (const w of workers) await w.kill();
    await env?.close();
  });

  /** Waits until the egress is ACTIVE or has ended (whichever comes first). */
  async function untilActiveOrEnded(id: string): Promise<void> {
    await waitFor(`${id} active or ended`, async () => {
      const i = await infoOf(env.api, id);
      return i && i.status >= EgressStatus.EGRESS_ACTIVE ? true : undefined;
    }, 40_000);
  }

  /** Runs every accepted egress ~6 s, stops it, and checks COMPLETE, duration and dropped frames. */
  async function completeAll(accepted: EgressInfo[], ws: WorkerProc[], maxDropped: number | null): Promise<string[]> {
    const lines: string[] = [];
    await Promise.all(accepted.map((a) => waitStatus(env.api, a.egressId, EgressStatus.EGRESS_ACTIVE, 40_000)));
    await sleep(6000);
    await Promise.all(accepted.map((a) => env.api.stopEgress(a.egressId)));
    for (const a of accepted) {
      const done = await waitStatus(env.api, a.egressId, EgressStatus.EGRESS_COMPLETE, 40_000);
      const f = done.fileResults[0];
      assert.ok(f?.location, `${a.egressId}: file result`);
      // Not a fault: the duration check applies; a page starved of CPU may repeat frames anywhere.
      const checked = await assertFaultedFile(f.location, f.duration, a.egressId, { movingVideo: false });
      const logs = ws.map((w) => w.logs()).join('\n');
      const frames = await waitFor(`${a.egressId} frame counts`, () => frameCounts(logs, a.egressId) ?? undefined, 5000);
      assert.ok(frames.in > 100, `${a.egressId}: ${frames.in} frames captured`);
      if (maxDropped !== null) assert.ok(frames.dropped <= frames.in * maxDropped, `${a.egressId}: ${frames.dropped} of ${frames.in} frames dropped (load ${os.loadavg()[0]?.toFixed(1)})`);
      lines.push(`${a.egressId} ${checked.reportedS.toFixed(2)} s, frames in ${frames.in} dropped ${frames.dropped}`);
    }
    return lines;
  }

  test('a burst of 20 StartEgress against one worker: what it cannot hold is refused up front; every accepted one completes with ≤ 1 % dropped frames', async () => {
    const w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-one'), cwd: env.dir, name: 'one', cpuCost: defaults });
    workers.push(w);
    try {
      const capacity = burstCapacity(cores, DEFAULT_WEB_CPU_COST, DEFAULT_MAX_CPU_UTILIZATION);
      const { accepted, refused } = await fireBurst(env, 20, 'burst1');
      console.log(`# one worker, ${cores} cores, web_cpu_cost ${DEFAULT_WEB_CPU_COST}: accepted ${accepted.length} (capacity ${capacity}), refused ${refused.length}: ${[...new Set(refused)].join(' | ')}`);
      assert.equal(accepted.length + refused.length, 20);
      assert.ok(accepted.length >= 1 && accepted.length <= capacity, `accepted ${accepted.length}, capacity ${capacity}`);
      for (const r of refused) assert.match(r, /^503 unavailable: (twirp error unknown: )?(not enough CPU|no response from servers)$/);
      // Accepted means running: none of them fails later for lack of room.
      for (const line of await completeAll(accepted, [w], 0.01)) console.log(`# ${line}`);
      // Refused means nothing was started for it: no handler is left, no egress beyond the accepted ones.
      assert.equal(w.handlers().size, 0);
      const listed = (await env.api.listEgress({})).filter((i) => i.egressId.length > 0 && !accepted.some((a) => a.egressId === i.egressId) && i.status < EgressStatus.EGRESS_COMPLETE);
      assert.deepEqual(listed.map((i) => `${i.egressId} ${EgressStatus[i.status]}`), [], 'no refused request left STARTING');
    } finally {
      await w.kill();
    }
  });

  test('two workers on one Redis share a burst of 20: each takes what it can hold, the rest is refused', async () => {
    const a = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-a'), cwd: env.dir, name: 'a', cpuCost: defaults });
    const b = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-b'), cwd: env.dir, name: 'b', cpuCost: defaults });
    workers.push(a, b);
    try {
      const capacity = burstCapacity(cores, DEFAULT_WEB_CPU_COST, DEFAULT_MAX_CPU_UTILIZATION);
      const { accepted, refused } = await fireBurst(env, 20, 'burst2');
      await sleep(500);
      const onA = accepted.filter((x) => a.handlers().has(x.egressId)).length;
      const onB = accepted.filter((x) => b.handlers().has(x.egressId)).length;
      console.log(`# two workers: accepted ${accepted.length} (${onA} on a, ${onB} on b; capacity ${capacity} each), refused ${refused.length}: ${[...new Set(refused)].join(' | ')}`);
      assert.equal(accepted.length + refused.length, 20);
      assert.ok(onA >= 1 && onB >= 1, 'both workers took a share');
      assert.ok(onA <= capacity && onB <= capacity);
      for (const r of refused) assert.match(r, /^503 unavailable: (twirp error unknown: )?(not enough CPU|no response from servers)$/);
      // Two workers on one 2-core box each believe they own the cores: what they took together may
      // drop frames here (on their own machines they would not), so only completion and durations count.
      for (const line of await completeAll(accepted, [a, b], null)) console.log(`# ${line}`);
    } finally {
      await a.kill();
      await b.kill();
    }
  });

  test('the reservation follows the encoding: a worker that holds one 720p30 web egress refuses a 1080p60 one up front (`not enough CPU`) and accepts the 720p30', async () => {
    // web_cpu_cost is the 720p30 figure: half the cores fits an idle worker (which offers all its
    // cores); 1080p60 reserves it × the model's factor (> 3), more than the cores. No timing involved:
    // both are decided on an idle worker by the reservation alone.
    const webCost = cores / 2;
    const c1080p60 = costOf({ case: 'web', value: new WebEgressRequest({ url: env.pageUrl, options: { case: 'preset', value: EncodingOptionsPreset.H264_1080P_60 } }) }, parseConfig(`cpu_cost:\n  web_cpu_cost: ${webCost}\n`)).cpu;
    assert.ok(c1080p60 > cores, `1080p60 reserves ${c1080p60} cores`);
    const w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-enc'), cwd: env.dir, name: 'enc', cpuCost: { web_cpu_cost: webCost } });
    workers.push(w);
    try {
      const refused = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'enc-1080p60.mp4')), { encodingOptions: EncodingOptionsPreset.H264_1080P_60 }).then(
        (i) => assert.fail(`1080p60 accepted: ${i.egressId}`),
        (e: { status?: number; code?: string; message?: string }) => `${e.status ?? '?'} ${e.code ?? '?'}: ${e.message ?? String(e)}`,
      );
      console.log(`# ${cores} cores, web_cpu_cost ${webCost}: 1080p60 (reserves ${c1080p60.toFixed(2)}) refused: ${refused}`);
      assert.match(refused, /^503 unavailable: (twirp error unknown: )?(not enough CPU|no response from servers)$/);
      assert.equal(w.handlers().size, 0, 'nothing was started for the refused request');
      assert.doesNotMatch(w.logs(), /StartEgress received/);
      const ok = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'enc-720p30.mp4')), { encodingOptions: EncodingOptionsPreset.H264_720P_30 });
      await waitStatus(env.api, ok.egressId, EgressStatus.EGRESS_ACTIVE, 40_000);
      await env.api.stopEgress(ok.egressId);
      await waitStatus(env.api, ok.egressId, EgressStatus.EGRESS_COMPLETE, 40_000);
    } finally {
      await w.kill();
    }
  });

  test('CPU overload (a CPU hog): after 10 s over the threshold the egress using most CPU above its cost is drained — COMPLETE, `End reason: CPU exhausted` — the other goes on', async () => {
    const w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-drain'), cwd: env.dir, name: 'drain', cpuCost: { web_cpu_cost: 0.2, audio_web_cpu_cost: 0.2 } });
    workers.push(w);
    try {
      const e1 = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'drain-1.mp4')));
      const e2 = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'drain-2.mp4')), { audioOnly: true });
      // On a machine already loaded by other work the monitor may drain one of them before it is
      // ACTIVE (or before the hog starts): that is the rule too, so waiting for ACTIVE is best effort.
      await untilActiveOrEnded(e1.egressId);
      await untilActiveOrEnded(e2.egressId);
      const hogStart = Date.now();
      hogs.push(...startHogs(cores + 1));
      await w.waitForLog(/CPU overloaded: stopping the egress using the most CPU \[egress:(EG_\w+)\]/, 60_000);
      const drainedAfterS = (Date.now() - hogStart) / 1000;
      const drainedId = /CPU overloaded: stopping the egress using the most CPU \[egress:(EG_\w+)\]/.exec(w.logs())?.[1] ?? '';
      const other = drainedId === e1.egressId ? e2.egressId : e1.egressId;
      assert.ok([e1.egressId, e2.egressId].includes(drainedId));
      const drained: EgressInfo = await waitFor(`${drainedId} ended`, async () => {
        const i = await infoOf(env.api, drainedId);
        return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
      }, 30_000);
      if (drained.status === EgressStatus.EGRESS_ABORTED) {
        // Drained before its pipeline ran (ambient load): the original's stop-before-start outcome.
        console.log(`# drained before it started: ABORTED ${drained.error}`);
        assert.equal(drained.error, 'Stop called before pipeline could start');
      } else {
        // The monitor reads the host's load: on a machine already loaded by other work it may drain
        // before the hog has run 10 s (the 10-sample rule itself is a unit test of the Monitor).
        console.log(`# drained ${drainedId === e1.egressId ? 'the video' : 'the audio-only'} egress ${drainedAfterS.toFixed(1)} s after the hog started (load ${os.loadavg()[0]?.toFixed(1)})`);
        assert.equal(drained.details, 'End reason: CPU exhausted');
        assert.equal(drained.error, '');
        const f = drained.fileResults[0];
        assert.ok(f?.location);
        await assertFaultedFile(f.location, f.duration, 'drained', { movingVideo: false });
      }
      // The other goes on (one egress left is never drained).
      await waitStatus(env.api, other, EgressStatus.EGRESS_ACTIVE, 40_000);
      for (const h of hogs.splice(0)) h.kill('SIGKILL');
      await env.api.stopEgress(other);
      await waitStatus(env.api, other, EgressStatus.EGRESS_COMPLETE, 30_000);
      assert.match(await w.metrics(), /livekit_egress_handler_results_total\{type="web",result="stopped_cpu"[^}]*\} 1/);
    } finally {
      for (const h of hogs.splice(0)) h.kill('SIGKILL');
      await w.kill();
    }
  });

  test('CPU kill: a drained egress still running after cpu_kill_grace_sec is killed — FAILED 403 `CPU exhausted: <x> cores used`', async () => {
    const w = await startWorker({
      redisPort: env.redis.port,
      tmpDir: join(env.dir, 'tmp-cpukill'),
      cwd: env.dir,
      name: 'cpukill',
      cpuCost: { web_cpu_cost: 0.2, audio_web_cpu_cost: 0.2, cpu_kill_grace_sec: 2 },
    });
    workers.push(w);
    const stopped: number[] = [];
    let watcher: NodeJS.Timeout | undefined;
    try {
      const e1 = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'cpukill-1.mp4')));
      const e2 = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'cpukill-2.mp4')), { audioOnly: true });
      await untilActiveOrEnded(e1.egressId);
      await untilActiveOrEnded(e2.egressId);
      // The drain of whichever egress is picked must not finish within the grace: freeze its encoder
      // the moment it is picked (the worker then has to kill it).
      watcher = setInterval(() => {
        const m = /CPU overloaded: stopping the egress using the most CPU \[egress:(EG_\w+)\]/.exec(w.logs());
        if (!m || stopped.length > 0) return;
        for (const pid of pidsMentioning(m[1] as string).filter((p) => /gst-launch/.test(commOf(p)))) {
          try {
            process.kill(pid, 'SIGSTOP');
            stopped.push(pid);
          } catch {
            /* gone */
          }
        }
      }, 50);
      hogs.push(...startHogs(cores + 1));
      await w.waitForLog(/CPU overloaded: stopping the egress using the most CPU \[egress:(EG_\w+)\]/, 60_000);
      const drainedId = /CPU overloaded: stopping the egress using the most CPU \[egress:(EG_\w+)\]/.exec(w.logs())?.[1] ?? '';
      const t0 = Date.now();
      const killed = await waitStatus(env.api, drainedId, EgressStatus.EGRESS_FAILED, 30_000);
      console.log(`# drained ${drainedId}, its encoder frozen (${stopped.length} gst-launch); FAILED ${Date.now() - t0} ms later: ${killed.error}`);
      // (Drained while still starting — ambient load — there is no encoder to freeze yet; its stop
      // then cannot finish either before the grace runs out.)
      assert.match(killed.error, /^CPU exhausted: \d+\.\d\d cores used$/);
      assert.equal(killed.errorCode, 403);
      assert.match(await w.metrics(), /livekit_egress_handler_results_total\{type="web",result="killed_cpu"[^}]*\} 1/);
      const other = drainedId === e1.egressId ? e2.egressId : e1.egressId;
      await waitStatus(env.api, other, EgressStatus.EGRESS_ACTIVE, 40_000);
      for (const h of hogs.splice(0)) h.kill('SIGKILL');
      await env.api.stopEgress(other);
      await waitStatus(env.api, other, EgressStatus.EGRESS_COMPLETE, 30_000);
    } finally {
      if (watcher) clearInterval(watcher);
      for (const pid of stopped) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      for (const h of hogs.splice(0)) h.kill('SIGKILL');
      await w.kill();
    }
  });

  test('memory kill: over max_memory, the biggest egress is killed — FAILED 403 `OOM: <x> GB used` — with what it recorded', async () => {
    const pages = new StaticServer(FIXTURE_PAGES_DIR);
    const base = await pages.listen();
    // max_memory must exceed the 1 GB admission headroom for anything to be admitted at all; the page
    // then grows the egress (its processes' RSS, summed) well past it.
    const w = await startWorker({
      redisPort: env.redis.port,
      tmpDir: join(env.dir, 'tmp-oom'),
      cwd: env.dir,
      name: 'oom',
      cpuCost: { ...defaults, max_memory: 1.1, memory_kill_grace_sec: 0 },
    });
    workers.push(w);
    try {
      const e = await env.api.startWebEgress(`${base}memory/?mb=768`, fileOut(join(env.dir, 'oom.mp4')));
      const killed = await waitStatus(env.api, e.egressId, EgressStatus.EGRESS_FAILED, 60_000);
      console.log(`# memory kill: ${killed.error}`);
      assert.match(killed.error, /^OOM: \d+\.\d\d GB used$/);
      // Killed once over 1.1 GB; the message rounds to hundredths (1.1004 GB reads `1.10`).
      assert.ok(Number(/OOM: ([\d.]+)/.exec(killed.error)?.[1]) >= 1.1, killed.error);
      assert.equal(killed.errorCode, 403);
      assert.match(await w.metrics(), /livekit_egress_handler_results_total\{type="web",result="killed_oom"[^}]*\} 1/);
      const f = killed.fileResults[0];
      if (f?.location && f.duration > 0n) await assertFaultedFile(f.location, f.duration, 'memory-killed', { movingVideo: false, minS: 0 });
      else console.log('# killed before anything was recorded');
    } finally {
      await w.kill();
      await pages.close();
    }
  });
});
