/**
 * RPC latency of `egress serve` with a real livekit-server v1.13.5 + Redis:
 *   - startWebEgress → the worker's ClaimRequest (seen on Redis),
 *   - startWebEgress → the API call returning (STARTING),
 *   - startWebEgress → IOInfo.UpdateEgress(ACTIVE) (seen on Redis),
 * p50/p95 over N sequential requests (default 50), plus the worker's idle CPU and RSS.
 *
 * To fit 50 requests on 2 cores each request is an audio-only web egress of the bundled demo page
 * that is stopped as soon as it is ACTIVE (the next starts once it is COMPLETE). The worker is idle
 * (affinity 0.5) at every request, so each claim waits livekit-server's 500 ms short-circuit window.
 *
 *   npm run -s build && node dist/bench/rpc.js [--n 50]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EgressClient, EncodedFileOutput } from 'livekit-server-sdk';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { stringify } from 'yaml';
import { StaticServer } from '../main/capture/static-server.js';
import { ClaimRequest, decodeEnvelope, Request } from '../main/rpc/psrpc/index.js';
import { StartEgressRequest } from '../main/rpc/messages.js';
import { livekitBinary, startLivekit } from '../test/harness/livekit.js';
import { freeTcpPort, sleep, startRedis } from '../test/harness/redis.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const TEMPLATES = join(HERE, '../../templates');
const SERVE_ENTRY = join(HERE, '../test/service/serve-entry.js');

function procCpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function idleCpu(pid: number, ms: number): Promise<number> {
  const a = procCpuTicks(pid);
  await sleep(ms);
  return ((procCpuTicks(pid) - a) / 100 / (ms / 1000)) * 100;
}

function pct(v: number[], p: number): number {
  const s = [...v].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '50' } } });
  const n = Number(values.n);
  if (!livekitBinary()) throw new Error('livekit-server not built: bash scripts/install-livekit.sh');
  const dir = mkdtempSync(join(tmpdir(), 'egress-bench-rpc-'));
  const redis = await startRedis();
  const lk = await startLivekit({ redis, logLevel: 'warn' });
  const pages = new StaticServer(TEMPLATES);
  const url = (await pages.listen()) + 'demo/';
  const config = {
    redis: { address: `127.0.0.1:${redis.port}` },
    health_port: await freeTcpPort(),
    tmp_dir: join(dir, 'tmp'),
    logging: { level: 'warn' },
    cpu_cost: { web_cpu_cost: 1, audio_web_cpu_cost: 0.5 },
  };
  const worker = spawn(process.execPath, [SERVE_ENTRY, '--config-body', stringify(config)], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const api = new EgressClient(lk.url, lk.apiKey, lk.apiSecret, { requestTimeout: 60 });

  // Sniff Redis: StartEgress requests (request id → egress id), claims, UpdateEgress statuses.
  const sniff = new Redis(redis.url);
  const reqToEgress = new Map<string, string>();
  const claimAt = new Map<string, number>();
  const statusAt = new Map<string, Map<EgressStatus, number>>();
  sniff.on('pmessageBuffer', (_p: Buffer, chBuf: Buffer, payload: Buffer) => {
    const now = performance.now();
    const ch = chBuf.toString();
    try {
      if (ch === 'EgressInternal|StartEgress|REQ') {
        const r = decodeEnvelope(Request, payload);
        reqToEgress.set(r.requestId, StartEgressRequest.fromBinary(r.rawRequest).egressId);
      } else if (ch.startsWith('EgressInternal|') && ch.endsWith('|CLAIM')) {
        const c = decodeEnvelope(ClaimRequest, payload);
        const id = reqToEgress.get(c.requestId);
        if (id && !claimAt.has(id)) claimAt.set(id, now);
      } else if (ch === 'IOInfo|UpdateEgress|REQ') {
        const info = EgressInfo.fromBinary(decodeEnvelope(Request, payload).rawRequest);
        let m = statusAt.get(info.egressId);
        if (!m) statusAt.set(info.egressId, (m = new Map()));
        if (!m.has(info.status)) m.set(info.status, now);
      }
    } catch {
      /* not ours */
    }
  });
  await sniff.psubscribe('EgressInternal|*', 'IOInfo|UpdateEgress|REQ');
  await sleep(3000); // worker start-up
  if (worker.exitCode !== null) throw new Error('worker exited');

  const idleBefore = await idleCpu(worker.pid as number, 10_000);
  const rssBefore = rssMb(worker.pid as number);

  const claim: number[] = [];
  const reply: number[] = [];
  const active: number[] = [];
  const waitFor = async (id: string, s: EgressStatus, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = statusAt.get(id)?.get(s);
      if (t !== undefined) return t;
      if (Date.now() > deadline) throw new Error(`${id}: no ${EgressStatus[s]}`);
      await sleep(5);
    }
  };
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const info = await api.startWebEgress(url, new EncodedFileOutput({ filepath: join(dir, 'out', `r${i}.ogg`) }), { audioOnly: true });
    reply.push(performance.now() - t0);
    const c = claimAt.get(info.egressId);
    if (c !== undefined) claim.push(c - t0);
    active.push((await waitFor(info.egressId, EgressStatus.EGRESS_ACTIVE, 30_000)) - t0);
    await api.stopEgress(info.egressId);
    const end = Date.now() + 30_000;
    while (![EgressStatus.EGRESS_COMPLETE, EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_ABORTED].some((s) => statusAt.get(info.egressId)?.has(s))) {
      if (Date.now() > end) throw new Error(`${info.egressId} did not end`);
      await sleep(10);
    }
    process.stderr.write(`\r${i + 1}/${n}`);
  }
  process.stderr.write('\n');
  await sleep(3000);
  const idleAfter = await idleCpu(worker.pid as number, 10_000);
  const rssAfter = rssMb(worker.pid as number);

  const row = (name: string, v: number[]): string => `${name.padEnd(40)} p50 ${pct(v, 50).toFixed(0).padStart(5)} ms   p95 ${pct(v, 95).toFixed(0).padStart(5)} ms   (n=${v.length})`;
  process.stdout.write(
    [
      `egress serve RPC latency, ${n} sequential audio-only web egresses (stopped at ACTIVE), livekit-server v1.13.5, 1 worker, ${(await import('node:os')).availableParallelism()} cores`,
      'the claim is sent at once; livekit-server then waits its 500 ms short-circuit before choosing, because an idle worker claims with affinity 0.5 (< MaximumAffinity 1)',
      row('startWebEgress → worker claim', claim),
      row('startWebEgress → STARTING reply', reply),
      row('startWebEgress → ACTIVE (UpdateEgress)', active),
      `worker idle CPU: ${idleBefore.toFixed(2)} % of a core before, ${idleAfter.toFixed(2)} % after (10 s each)`,
      `worker RSS: ${rssBefore.toFixed(1)} MB before, ${rssAfter.toFixed(1)} MB after ${n} egresses`,
    ].join('\n') + '\n',
  );

  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  sniff.disconnect();
  await pages.close();
  await lk.stop();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
