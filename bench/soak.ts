import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressClient, EgressStatus, EncodedFileOutput, EncodingOptionsPreset, RoomServiceClient, type EgressInfo } from 'livekit-server-sdk';
import { startLivekit } from '../test/harness/livekit.js';
import { freeTcpPort, startRedis } from '../test/harness/redis.js';
import { pidsMentioning, rssBytes, startWorker } from '../test/service/worker-harness.js';
import { startRemotePublisher } from '../test/support/remote-publisher.js';
import type { PublisherHandle } from '../test/support/publisher.js';
import { ffprobe } from '../test/support/media.js';
import { StaticServer } from '../main/capture/static-server.js';
import { TEMPLATES_DIR } from '../test/support/web-egress.js';
import { commOf } from '../main/service/proc.js';

/**
 * bench/soak: one `egress serve` worker (real Redis + livekit-server) running back-to-back egresses for
 * N minutes — a web egress of the bundled demo page, and (unless --no-room) every other one a grid room
 * composite of two remote publishers — started and stopped through livekit-server with
 * livekit-server-sdk. Prints every `--sample` seconds the worker's RSS and open descriptors
 * (/proc/PID/status, /proc/PID/fd) and the processes of its tree; after each egress its final status,
 * reported vs container duration, and any Chromium / gst-launch process left over from it; at the end
 * the growth of RSS and descriptors after the first 10 minutes (or the first third of a shorter run).
 *
 *   npm run soak -- --minutes 60 [--egress-seconds 120] [--sample 30] [--no-room]
 */

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Ctrl-C / SIGTERM end the run early: the current egress is stopped and the summary printed. */
let stopRequested = false;
let wakeUp: () => void = () => undefined;
const interrupted = new Promise<void>((r) => (wakeUp = r));
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    wakeUp();
  });
}
const interruptibleSleep = (ms: number): Promise<void> => Promise.race([sleep(ms), interrupted]);

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function ppidOf(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Every descendant of `root`. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    const pp = ppidOf(pid);
    children.set(pp, [...(children.get(pp) ?? []), pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

const isMediaProcess = (pid: number): boolean => /chrom|gst-launch/i.test(commOf(pid));

interface Sample {
  readonly atS: number;
  readonly rssMiB: number;
  readonly fds: number;
  readonly treeProcs: number;
  readonly load1: string;
}

interface Outcome {
  readonly kind: string;
  readonly id: string;
  readonly status: string;
  readonly error: string;
  readonly reportedS: number;
  readonly containerS: number;
  readonly leftovers: string[];
}

const mib = (b: number): number => b / (1024 * 1024);

async function main(): Promise<void> {
  const minutes = Number(arg('minutes', '60'));
  const egressS = Number(arg('egress-seconds', '120'));
  const sampleS = Number(arg('sample', '30'));
  const withRoom = !process.argv.includes('--no-room');
  const dir = await mkdtemp(join(tmpdir(), 'egress-soak-'));
  const redis = await startRedis();
  const lk = await startLivekit({ redis });
  const pages = new StaticServer(TEMPLATES_DIR);
  const pageUrl = (await pages.listen()) + 'demo/';
  const worker = await startWorker({
    redisPort: redis.port,
    tmpDir: join(dir, 'tmp'),
    cwd: dir,
    name: 'soak-worker',
    cpuCost: { web_cpu_cost: 1, room_composite_cpu_cost: 1 },
    extra: { ws_url: lk.wsUrl, template_port: await freeTcpPort() },
  });
  const api = new EgressClient(lk.url, lk.apiKey, lk.apiSecret, { requestTimeout: 60 });
  const rooms = new RoomServiceClient(lk.url, lk.apiKey, lk.apiSecret);
  const pubs: PublisherHandle[] = [];
  const samples: Sample[] = [];
  const outcomes: Outcome[] = [];
  const t0 = Date.now();
  const elapsedS = (): number => (Date.now() - t0) / 1000;
  const log = (s: string): void => void process.stdout.write(`[${(elapsedS() / 60).toFixed(1).padStart(5)} min] ${s}\n`);
  const sample = (): void => {
    const s = { atS: elapsedS(), rssMiB: mib(rssBytes(worker.pid)), fds: fdCount(worker.pid), treeProcs: descendants(worker.pid).length, load1: readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?' };
    samples.push(s);
    log(`worker RSS ${s.rssMiB.toFixed(1)} MiB, fds ${s.fds}, processes in its tree ${s.treeProcs}, load ${s.load1}`);
  };
  sample();
  const sampler = setInterval(sample, sampleS * 1000);
  const room = 'soak-room';
  try {
    if (withRoom) {
      await rooms.createRoom({ name: room, emptyTimeout: 24 * 3600 });
      const epochMs = Math.ceil(Date.now() / 1000) * 1000 + 2000;
      pubs.push(await startRemotePublisher({ wsUrl: lk.wsUrl, apiKey: lk.apiKey, apiSecret: lk.apiSecret, room, identity: 'p1', colour: [220, 40, 40], toneHz: 523, epochMs, video: { codec: 'vp8', width: 640, height: 360 } }));
      pubs.push(await startRemotePublisher({ wsUrl: lk.wsUrl, apiKey: lk.apiKey, apiSecret: lk.apiSecret, room, identity: 'p2', colour: [40, 190, 70], toneHz: 659, epochMs, video: { codec: 'vp8', width: 640, height: 360 } }));
    }
    let n = 0;
    while (!stopRequested && elapsedS() + egressS + 20 < minutes * 60) {
      const kind = withRoom && n % 2 === 1 ? 'room' : 'web';
      n++;
      const file = new EncodedFileOutput({ filepath: join(dir, `soak-${n}-${kind}.mp4`) });
      const started =
        kind === 'web'
          ? await api.startWebEgress(pageUrl, file, { encodingOptions: EncodingOptionsPreset.H264_720P_30 })
          : await api.startRoomCompositeEgress(room, { file }, { layout: 'grid', encodingOptions: EncodingOptionsPreset.H264_720P_30 });
      const id = started.egressId;
      let info: EgressInfo | undefined;
      const activeBy = Date.now() + 30_000;
      for (;;) {
        [info] = await api.listEgress({ egressId: id });
        if (!info || info.status < EgressStatus.EGRESS_ACTIVE) {
          if (Date.now() > activeBy) break;
          await sleep(250);
          continue;
        }
        break;
      }
      if (info?.status === EgressStatus.EGRESS_ACTIVE) {
        await interruptibleSleep(egressS * 1000);
        await api.stopEgress(id).catch((err: unknown) => log(`${id}: stop: ${String(err)}`));
      }
      const doneBy = Date.now() + 60_000;
      for (;;) {
        [info] = await api.listEgress({ egressId: id });
        if ((info && info.status >= EgressStatus.EGRESS_COMPLETE) || Date.now() > doneBy) break;
        await sleep(250);
      }
      const fr = info?.fileResults[0];
      const reportedS = Number(fr?.duration ?? 0n) / 1e9;
      const containerS = fr?.location ? Number((await ffprobe(fr.location).catch(() => ({ format: { duration: 'NaN' } }))).format.duration) : NaN;
      if (fr?.location) await rm(fr.location, { force: true });
      // What this egress started must be gone a few seconds after its end.
      await sleep(3000);
      const leftovers = pidsMentioning(id, [worker.pid]).map((p) => `${p} ${commOf(p) || '?'}`);
      const o: Outcome = { kind, id, status: info ? EgressStatus[info.status] : 'UNKNOWN', error: info?.error ?? '', reportedS, containerS, leftovers };
      outcomes.push(o);
      log(`#${n} ${kind} ${id}: ${o.status}${o.error ? ` (${o.error})` : ''}, reported ${reportedS.toFixed(2)} s, container ${containerS.toFixed(2)} s${leftovers.length ? `, LEFTOVER ${leftovers.join(', ')}` : ''}`);
    }
  } finally {
    clearInterval(sampler);
    sample();
    // Between egresses, the worker's tree holds only its own helpers: any browser or gst is left over.
    const strays = descendants(worker.pid).filter(isMediaProcess).map((p) => `${p} ${commOf(p) || '?'}`);
    const mentioning = pidsMentioning(dir, [worker.pid]).filter(isMediaProcess).map((p) => `${p} ${commOf(p) || '?'}`);
    await Promise.all(pubs.map((p) => p.stop()));
    await worker.kill();
    await pages.close();
    await lk.stop();
    await redis.close();
    await rm(dir, { recursive: true, force: true });

    const w = (s: string): void => void process.stdout.write(s + '\n');
    w('\n=== soak summary ===');
    w(`ran ${(elapsedS() / 60).toFixed(1)} min, ${outcomes.length} egresses of ${egressS} s (${outcomes.filter((o) => o.kind === 'web').length} web, ${outcomes.filter((o) => o.kind === 'room').length} room composite)`);
    const byStatus = new Map<string, number>();
    for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    w(`final statuses: ${[...byStatus].map(([s, c]) => `${s} ${c}`).join(', ') || 'none'}`);
    for (const o of outcomes.filter((x) => x.status !== 'EGRESS_COMPLETE')) w(`  not complete: ${o.kind} ${o.id} ${o.status} ${o.error}`);
    const worstDelta = Math.max(0, ...outcomes.filter((o) => Number.isFinite(o.containerS)).map((o) => Math.abs(o.containerS - o.reportedS)));
    w(`largest |container − reported| duration: ${worstDelta.toFixed(3)} s`);
    w(`leftover processes after each egress: ${outcomes.flatMap((o) => o.leftovers).join(', ') || 'none'}`);
    w(`browser / gst-launch processes in the worker's tree at the end: ${strays.join(', ') || 'none'}; anywhere mentioning the soak dir: ${mentioning.join(', ') || 'none'}`);
    w('\n  min   RSS MiB   fds   procs   load1');
    for (const s of samples) w(`${(s.atS / 60).toFixed(1).padStart(5)}  ${s.rssMiB.toFixed(1).padStart(8)}  ${String(s.fds).padStart(4)}  ${String(s.treeProcs).padStart(6)}  ${s.load1.padStart(6)}`);
    const warmS = Math.min(600, (minutes * 60) / 3);
    const after = samples.filter((s) => s.atS >= warmS);
    if (after.length >= 2) {
      const first = after[0] as Sample;
      const rest = after.slice(1);
      const maxRss = Math.max(...rest.map((s) => s.rssMiB));
      const maxFds = Math.max(...rest.map((s) => s.fds));
      const last = after[after.length - 1] as Sample;
      w(
        `\nafter the first ${(warmS / 60).toFixed(1)} min: RSS ${first.rssMiB.toFixed(1)} → last ${last.rssMiB.toFixed(1)} MiB (max ${maxRss.toFixed(1)}, growth ${(((maxRss - first.rssMiB) / first.rssMiB) * 100).toFixed(1)} %); ` +
          `fds ${first.fds} → last ${last.fds} (max ${maxFds}, growth ${(((maxFds - first.fds) / first.fds) * 100).toFixed(1)} %)`,
      );
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    w(`load average at the end: ${load}`);
  }
}

await main();
