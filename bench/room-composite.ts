import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressClient, EgressStatus, EncodedFileOutput, EncodingOptionsPreset, RoomServiceClient } from 'livekit-server-sdk';
import { startLivekit } from '../test/harness/livekit.js';
import { freeTcpPort, startRedis } from '../test/harness/redis.js';
import { startWorker } from '../test/service/worker-harness.js';
import { startRemotePublisher } from '../test/support/remote-publisher.js';
import type { PublisherHandle } from '../test/support/publisher.js';
import { GroupCpuMeter } from './proc-cpu.js';
import { floorCpu } from './floor.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { analyseRoomMedia } from '../test/support/room-media.js';
import { gridRects } from '../templates/room/src/geometry.js';
import { DEFAULT_AUDIO_BITRATE_KBPS, DEFAULT_AUDIO_FREQUENCY, PRESETS } from '../main/request/encoding.js';

/**
 * bench/room-composite: CPU seconds per recorded minute of a 720p30 grid room composite (H264_720P_30,
 * default template) of 2 and of 4 publishers (640x360 VP8 + Opus each, every publisher in its own
 * process, as remote clients), counting every process of the egress — the worker, its handler,
 * Chromium and all its helpers, gst-launch — and request → ACTIVE as a livekit-server-sdk client sees it
 * (StartEgress on livekit-server until ListEgress says ACTIVE). Beside it, the floor: the same encoder
 * on generated frames, measured in the same run. Everything runs on loopback: Redis, livekit-server
 * and our worker (`egress serve`).
 *
 * Each recording is also checked for A/V: per publisher, its flash in its grid cell against its beep
 * (they happen together at the source once a second): |offset| p50 / p80 and the drift (mean offset of
 * the last 20 s minus the first 20 s). `--hog` runs a busy loop on one core for the whole recording.
 *
 *   npm run bench:room -- [--seconds 60] [--publishers 2,4] [--hog]
 */

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const LOOKS = [
  { colour: [220, 40, 40], toneHz: 523 },
  { colour: [40, 190, 70], toneHz: 659 },
  { colour: [50, 90, 230], toneHz: 784 },
  { colour: [230, 200, 40], toneHz: 988 },
] as const;

const preset = PRESETS[EncodingOptionsPreset.H264_720P_30] as (typeof PRESETS)[number];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '60'));
  const counts = arg('publishers', '2,4').split(',').map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'egress-bench-room-'));
  const redis = await startRedis();
  const lk = await startLivekit({ redis }).catch(async (err: unknown) => {
    await redis.close();
    throw err;
  });
  const worker = await startWorker({
    redisPort: redis.port,
    tmpDir: join(dir, 'tmp'),
    cwd: dir,
    name: 'bench-worker',
    cpuCost: { room_composite_cpu_cost: 1 },
    extra: { ws_url: lk.wsUrl, template_port: await freeTcpPort() },
  }).catch(async (err: unknown) => {
    await lk.stop();
    await redis.close();
    throw err;
  });
  const egress = new EgressClient(lk.url, lk.apiKey, lk.apiSecret);
  const rooms = new RoomServiceClient(lk.url, lk.apiKey, lk.apiSecret);
  const pubs: PublisherHandle[] = [];
  try {
    for (const n of counts) {
      const room = `bench-${n}`;
      await rooms.createRoom({ name: room });
      const epochMs = Math.ceil(Date.now() / 1000) * 1000 + 2000;
      const these: PublisherHandle[] = [];
      for (let i = 0; i < n; i++) {
        const look = LOOKS[i % LOOKS.length] as (typeof LOOKS)[number];
        these.push(
          await startRemotePublisher({ wsUrl: lk.wsUrl, apiKey: lk.apiKey, apiSecret: lk.apiSecret, room, identity: `p${i + 1}`, colour: look.colour, toneHz: look.toneHz, epochMs, video: { codec: 'vp8', width: 640, height: 360 } }),
        );
      }
      pubs.push(...these);
      await sleep(2000);

      const hog: ChildProcess | null = process.argv.includes('--hog') ? spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }) : null;
      const meter = new GroupCpuMeter();
      meter.followTree(worker.pid);
      const sampler = setInterval(() => meter.sample(), 500);
      const t0 = Date.now();
      const started = await egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(dir, `${room}.mp4`) }) }, { layout: 'grid', encodingOptions: EncodingOptionsPreset.H264_720P_30 });
      let activeMs = 0;
      while (!activeMs) {
        const [info] = await egress.listEgress({ egressId: started.egressId });
        if (info?.status === EgressStatus.EGRESS_ACTIVE) activeMs = Date.now() - t0;
        else if (info && info.status > EgressStatus.EGRESS_ENDING) throw new Error(`${room}: ${EgressStatus[info.status]} ${info.error}`);
        else await sleep(50);
      }
      await sleep(seconds * 1000);
      await egress.stopEgress(started.egressId);
      let done;
      for (;;) {
        const [info] = await egress.listEgress({ egressId: started.egressId });
        if (info && info.status >= EgressStatus.EGRESS_COMPLETE) {
          done = info;
          break;
        }
        await sleep(200);
      }
      meter.sample();
      clearInterval(sampler);
      hog?.kill('SIGKILL');
      if (done.status !== EgressStatus.EGRESS_COMPLETE) throw new Error(`${room}: ${EgressStatus[done.status]} ${done.error}`);
      await Promise.all(these.map((p) => p.stop()));

      const recordedS = Number(done.fileResults[0]?.duration ?? 0n) / 1e9;
      const cpuS = meter.total();
      const perMinute = (cpuS / recordedS) * 60;
      const floor = await floorCpu(
        { width: preset.width, height: preset.height, framerate: preset.framerate, bitrateKbps: preset.videoBitrateKbps, profile: 'main', keyFrameIntervalS: 0, threads: 0 },
        { codec: 'aac', bitrateKbps: DEFAULT_AUDIO_BITRATE_KBPS, sampleRate: DEFAULT_AUDIO_FREQUENCY },
        seconds,
        join(dir, 'floor.mp4'),
      );
      const parts = meter
        .byName()
        .filter((p) => p.cpuS >= 0.05)
        .map((p) => `${p.name} ${p.cpuS.toFixed(1)}`)
        .join(', ');
      const chromiumParts = meter
        .byRole()
        .filter((p) => p.role.startsWith('chromium:') && p.cpuS >= 0.05)
        .map((p) => `${p.role.slice(9)} ${p.cpuS.toFixed(1)}`)
        .join(', ');
      const rects = gridRects(n, preset.width, preset.height);
      const av = await analyseRoomMedia(done.fileResults[0]?.location ?? '', these.map((p, i) => ({ identity: p.identity, rect: rects[i] as (typeof rects)[number], colour: (LOOKS[i % LOOKS.length] as (typeof LOOKS)[number]).colour, toneHz: (LOOKS[i % LOOKS.length] as (typeof LOOKS)[number]).toneHz })), { colourTolerance: 60 });
      const ms = (x: number): string => (x * 1000).toFixed(0);
      const avLine = av.publishers.map((p) => `${p.identity} p50 ${ms(p.sync.p50)} p80 ${ms(p.sync.p80)} median ${ms(p.sync.median)} drift ${ms(p.sync.drift)} ms (${p.sync.pairs} pairs)`).join('; ');
      process.stdout.write(
        `grid 720p30, ${n} publishers (640x360 VP8)${hog ? ', CPU hog running' : ''}: ${perMinute.toFixed(1)} CPU-s per recorded minute (floor: encoder alone on generated frames ${((floor / seconds) * 60).toFixed(1)}), ` +
          `recorded ${recordedS.toFixed(2)} s using ${cpuS.toFixed(1)} CPU-s (${parts} [chromium: ${chromiumParts}]); request→ACTIVE ${activeMs} ms; A/V |video − audio|: ${avLine}\n`,
      );
    }
  } finally {
    await Promise.all(pubs.map((p) => p.stop()));
    await worker.kill();
    await lk.stop();
    await redis.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
