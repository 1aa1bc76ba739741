/**
 * Shared set-up of the room-composite suites: Redis, livekit-server, our worker (`egress serve`, real
 * code path) with its built-in template server, the real client path (livekit-server-sdk's
 * EgressClient and RoomServiceClient), synthetic rtc-node publishers and the media checks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressClient, EgressStatus, RoomServiceClient, type EgressInfo } from 'livekit-server-sdk';
import { startLivekit, type LivekitInstance } from '../harness/livekit.js';
import { freeTcpPort, sleep, startRedis, type RedisInstance } from '../harness/redis.js';
import { infoOf as egressInfoOf, waitStatus as waitEgressStatus } from '../service/common.js';
import { countedFps, ffprobe, videoStream, audioStream, type Probe } from '../support/media.js';
import { disposeRtc, type PublisherHandle, type PublisherOptions, type Rgb } from '../support/publisher.js';
import { startRemotePublisher } from '../support/remote-publisher.js';
import { analyseRoomMedia, formatRoomMedia, presence, type PublisherRegion, type Rect, type RoomMediaReport } from '../support/room-media.js';
import { startWorker, type WorkerProc } from '../service/worker-harness.js';
import { keepWorkerLog } from '../support/worker-log.js';

export interface RoomEnv {
  redis: RedisInstance;
  lk: LivekitInstance;
  worker: WorkerProc;
  egress: EgressClient;
  rooms: RoomServiceClient;
  dir: string;
  templatePort: number;
  close(): Promise<void>;
}

/** Colours and tones of up to four publishers (far apart in hue and in pitch). */
export const PUBLISHER_LOOKS: readonly { colour: Rgb; toneHz: number }[] = [
  { colour: [220, 40, 40], toneHz: 523 },
  { colour: [40, 190, 70], toneHz: 659 },
  { colour: [50, 90, 230], toneHz: 784 },
  { colour: [230, 200, 40], toneHz: 988 },
];

export async function startRoomEnv(extraConfig: Record<string, unknown> = {}, workerEnv: Record<string, string> = {}): Promise<RoomEnv> {
  const redis = await startRedis();
  const lk = await startLivekit({ redis });
  const dir = mkdtempSync(join(tmpdir(), 'egress-room-test-'));
  const templatePort = await freeTcpPort();
  const worker = await startWorker({
    redisPort: redis.port,
    tmpDir: join(dir, 'tmp'),
    cwd: dir,
    name: 'room-worker',
    cpuCost: { room_composite_cpu_cost: 1 },
    extra: { ws_url: lk.wsUrl, template_port: templatePort, ...extraConfig },
    env: workerEnv,
  });
  return {
    redis,
    lk,
    worker,
    egress: new EgressClient(lk.url, lk.apiKey, lk.apiSecret, { requestTimeout: 60 }),
    rooms: new RoomServiceClient(lk.url, lk.apiKey, lk.apiSecret),
    dir,
    templatePort,
    close: async () => {
      await worker.kill();
      await lk.stop();
      await redis.close();
      // KEEP_ROOM_TEST_DIR=1 keeps the recordings for a look after a failure.
      if (!process.env['KEEP_ROOM_TEST_DIR']) rmSync(dir, { recursive: true, force: true });
      else console.log(`# recordings kept in ${dir}`);
      await disposeRtc();
    },
  };
}

/** The egress as livekit-server stores it (test/service's helpers, on this env's client). */
export function infoOf(env: RoomEnv, id: string): Promise<EgressInfo | undefined> {
  return egressInfoOf(env.egress, id);
}

/** waitStatus of service/common; when it fails, the worker's log is kept and its status lines printed. */
export function waitStatus(env: RoomEnv, id: string, status: EgressStatus, timeoutMs = 45_000): Promise<EgressInfo> {
  return waitEgressStatus(env.egress, id, status, timeoutMs).catch((err: unknown) => keepWorkerLog(env.worker, id, err));
}

/** Waits until `id` is FAILED; `ms` runs from `sinceMs` (its request) to when FAILED was seen. */
export async function waitFailed(env: RoomEnv, id: string, sinceMs: number): Promise<{ info: EgressInfo; ms: number }> {
  const info = await waitStatus(env, id, EgressStatus.EGRESS_FAILED, 60_000);
  return { info, ms: Date.now() - sinceMs };
}

export { sleep };

/**
 * Starts `n` publishers named p1…pn (joining in that order, so the template's tile order — join
 * second, then identity — is p1, p2, …), all flashing and beeping on one schedule, each in its own
 * process (a remote client's media does not stall on the test's event loop).
 */
export async function startPublishers(env: RoomEnv, room: string, n: number, opts: Partial<PublisherOptions> = {}, first = 0): Promise<PublisherHandle[]> {
  const epochMs = Math.ceil(Date.now() / 1000) * 1000 + 2000;
  const pubs: PublisherHandle[] = [];
  for (let i = first; i < first + n; i++) {
    const look = PUBLISHER_LOOKS[i] as (typeof PUBLISHER_LOOKS)[number];
    pubs.push(
      await startRemotePublisher({
        wsUrl: env.lk.wsUrl,
        apiKey: env.lk.apiKey,
        apiSecret: env.lk.apiSecret,
        room,
        identity: `p${i + 1}`,
        name: `Publisher ${i + 1}`,
        colour: look.colour,
        toneHz: look.toneHz,
        epochMs,
        ...opts,
      }),
    );
  }
  return pubs;
}

export function regionsOf(pubs: readonly PublisherHandle[], rects: readonly (Rect | undefined)[]): PublisherRegion[] {
  return pubs.map((p, i) => {
    // p<k> wears look k−1 (see startPublishers)
    const look = PUBLISHER_LOOKS[Number(p.identity.slice(1)) - 1] as (typeof PUBLISHER_LOOKS)[number];
    const rect = rects[i];
    return { identity: p.identity, colour: look.colour, toneHz: look.toneHz, ...(rect ? { rect } : {}) };
  });
}

export interface FileChecks {
  readonly width: number;
  readonly height: number;
  readonly profile: string;
  readonly audio: boolean;
  readonly video: boolean;
}

/** ffprobe facts of a finished file against its EgressInfo. */
export async function checkFile(info: EgressInfo, want: FileChecks): Promise<{ path: string; probe: Probe }> {
  const f = info.fileResults[0];
  assert.ok(f, 'file result');
  assert.ok(f.location !== '' && f.size > 0n && f.duration > 0n, `file result ${JSON.stringify(f.toJson())}`);
  assert.ok(!f.filename.includes('{'), f.filename);
  const probe = await ffprobe(f.location);
  const v = videoStream(probe);
  const a = audioStream(probe);
  assert.equal(Boolean(v), want.video, 'video stream presence');
  assert.equal(Boolean(a), want.audio, 'audio stream presence');
  if (v) {
    assert.equal(v.codec_name, 'h264');
    assert.equal(v.profile, want.profile);
    assert.equal(v.width, want.width);
    assert.equal(v.height, want.height);
    const counted = await countedFps(f.location);
    assert.ok(Math.abs(counted.fps - 30) < 0.5, `fps ${counted.fps.toFixed(2)}`);
  }
  if (a) {
    assert.equal(a.codec_name, 'aac');
    assert.equal(a.channels, 2);
  }
  const reported = Number(f.duration) / 1e9;
  const container = Number(probe.format.duration);
  assert.ok(Math.abs(container - reported) <= 1, `container ${container.toFixed(2)} s vs reported ${reported.toFixed(2)} s`);
  return { path: f.location, probe };
}

/** Analyses a file and prints the figures (they go into the CI log). */
export async function analyse(label: string, path: string, regions: PublisherRegion[]): Promise<RoomMediaReport> {
  // Two codec generations (the publisher's VP8/H264, then x264) shift saturated colours by up to
  // ~45 per channel; the four looks are far enough apart for a tolerance of 60.
  const report = await analyseRoomMedia(path, regions, { colourTolerance: 60 });
  console.log(`# ${label}: ${formatRoomMedia(report).replace(/\n/g, `\n#   `)}`);
  for (const p of report.publishers) {
    if (p.sync.pairs > 0) console.log(`#   ${p.identity} offsets (ms) ${p.sync.offsets.map((x) => Math.round(x * 1000)).join(' ')}`);
  }
  return report;
}

/** Every publisher's colour in its region and its tone in ≥ `min` of the seconds [from, to). */
export function assertPresent(report: RoomMediaReport, from: number, to: number, min = 0.95, what: { colour?: boolean; tone?: boolean } = {}): void {
  for (const p of report.publishers) {
    const pres = presence(report, p.identity, from, to);
    assert.ok(pres.seconds >= to - from - 1, `${p.identity}: ${pres.seconds} s analysed`);
    if (what.colour ?? true) {
      assert.ok(pres.colour >= min, `${p.identity} colour in ${(pres.colour * 100).toFixed(0)} % of ${pres.seconds} s (per second: colour ${p.colourSeconds.map(Number).join('')}, frames ${report.framesBySecond.join(' ')})`);
    }
    if (what.tone ?? true) assert.ok(pres.tone >= min, `${p.identity} tone in ${(pres.tone * 100).toFixed(0)} % of ${pres.seconds} s`);
  }
}

/** The SDK sources' bound: p80 14–45 ms measured with the receive-delay correction (16 recordings), 41–63 without it. */
export const SDK_AV_P80_MS = 60;

/**
 * A/V per publisher (flash in its region vs its beep). The default bound is the original's own
 * content check (A/V p80 ≤ 300 ms); the figures are printed so the gap to our goal (40 ms) shows in
 * every run. ROOM_AV_P80_MS tightens it for measurements.
 */
export function assertAvSync(report: RoomMediaReport, maxP80Ms = Number(process.env['ROOM_AV_P80_MS'] ?? 300)): void {
  for (const p of report.publishers) {
    assert.ok(p.sync.pairs >= 5, `${p.identity}: ${p.sync.pairs} flash/beep pairs`);
    assert.ok(p.sync.p80 * 1000 <= maxP80Ms, `${p.identity}: A/V |offset| p80 ${(p.sync.p80 * 1000).toFixed(0)} ms (median ${(p.sync.median * 1000).toFixed(0)} ms) > ${maxP80Ms} ms`);
  }
}
