import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressStatus, EncodingOptionsPreset, WebEgressRequest, EncodedFileOutput } from '@livekit/protocol';
import { parseConfig } from '../main/config/index.js';
import type { StartEgressEnvelope } from '../main/request/index.js';
import { ChromiumHost, findChromium } from '../main/capture/chromium-host.js';
import { WarmBrowser } from '../main/capture/warm-browser.js';
import type { CaptureHostOptions } from '../main/capture/capture-host.js';
import { StaticServer } from '../main/capture/static-server.js';
import { createWebEgress } from '../main/egress/create-web-egress.js';
import { newEgressId } from '../main/egress/ids.js';
import { setLogLevel } from '../main/log.js';
import { GroupCpuMeter } from './proc-cpu.js';
import { floorCpu, renderFloorCpu } from './floor.js';
import { audioEncodingOf, videoEncodingOf } from '../main/egress/controller-common.js';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

/**
 * bench/web-egress: CPU seconds per recorded minute of all of a web egress's processes (Chromium and
 * its helpers, gst-launch, and this Node process's share), beside two floors measured in the same run —
 * the encode floor (the same encoder settings on generated frames alone) and the render floor (the
 * same page in the same browser with the same flags, no capture) — plus request-to-first-frame latency.
 *
 *   npm run bench:web -- [--seconds 60] [--presets 720,1080] [--page demo|avsync] [--chrome-flags a=b,c] [--video-path auto|x264|browser] [--threads N (x264 threads, 0 = auto)]
 *
 * Each line names the video path the egress took (config video_encode_path, see egress/video-path.ts;
 * the encode floor is x264's either way).
 *
 * Start-up only: `--latency N [--pool]` records N short files (--seconds, default 2) per preset and
 * prints request→first frame per run with its split, and the p50 — cold (a browser launched for the
 * request), and with --pool also warm (a pre-launched browser, as the worker's browser_pool_size
 * keeps, launched and left idle a moment before the request), runs interleaved.
 */

const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), '../../templates');

interface Figures {
  label: string;
  recordedS: number;
  cpuS: number;
  perMinute: number;
  floorPerMinute: number;
  renderFloorPerMinute: number;
  renderFloorBreakdown: string;
  requestToFirstFrameMs: number;
  requestToActiveMs: number;
  /** Where request→first frame went (see startupSplit). */
  split: string;
  framesIn: number;
  framesRepeated: number;
  framesDropped: number;
  breakdown: string;
  videoPath: string;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

/**
 * The start-up split of one egress, from the host's marks: request → open called (plan, outputs,
 * ingest), browser launch → first CDP answer, page attached, navigation, viewport fit, clock offset
 * and error check, then → capture called (the GStreamer child starting), the capture script injected,
 * getDisplayMedia (with the audio latency probe beside it), the viewport settling under the sharing
 * bar, the window minimised, → first frame.
 */
function startupSplit(t0: number, marks: ReadonlyMap<string, number>, firstFrameAt: number): string {
  const steps: [string, string][] = [
    ['open', 'request→open'],
    ['cdpAnswered', 'launch→CDP'],
    ['attached', 'attach'],
    ['navigated', 'navigate'],
    ['fitted', 'fit'],
    ['opened', 'clock+checks'],
    ['captureCalled', 'gst start'],
    ['scriptLoaded', 'script'],
    ['captureStarted', 'getDisplayMedia'],
    ['viewportSettled', 'viewport settle'],
    ['captureSettled', 'minimise'],
  ];
  let prev = t0;
  const parts: string[] = [];
  for (const [mark, name] of steps) {
    const at = marks.get(mark);
    if (at === undefined) continue;
    parts.push(`${name} ${Math.round(at - prev)}`);
    prev = at;
  }
  parts.push(`→first frame ${Math.round(firstFrameAt - prev)}`);
  return parts.join(', ') + ' ms';
}

interface RunOptions {
  /** Also measure the encode and render floors (the CPU figures); latency runs skip them. */
  readonly floors: boolean;
  /** Where the capture host comes from (default: a cold ChromiumHost). */
  readonly hostFactory?: (o: CaptureHostOptions) => ChromiumHost;
}

async function runOne(preset: EncodingOptionsPreset, label: string, seconds: number, page: string, base: string, dir: string, runOpts: RunOptions = { floors: true }): Promise<Figures> {
  const config = parseConfig(`tmp_dir: ${dir}\nvideo_encode_path: ${arg('video-path', 'auto')}\nvideo_encoder_threads: ${arg('threads', '0')}\n`);
  const request = new WebEgressRequest({
    url: `${base}${page}/`,
    options: { case: 'preset', value: preset },
    fileOutputs: [new EncodedFileOutput({ filepath: `${dir}/out/` })],
  });
  const envelope: StartEgressEnvelope = { egressId: newEgressId(), request: { case: 'web', value: request } };
  const t0 = Date.now();
  const extraFlags = Object.fromEntries(
    arg('chrome-flags', '')
      .split(',')
      .filter((f) => f)
      .map((f) => [f.split('=')[0] as string, f.split('=').slice(1).join('=')]),
  );
  let host: ChromiumHost | null = null;
  const { plan, controller: c } = createWebEgress(envelope, config, {
    localBaseDir: dir,
    hostFactory: (o) => (host = runOpts.hostFactory ? runOpts.hostFactory({ ...o, extraFlags }) : new ChromiumHost({ ...o, extraFlags })),
  });
  const meter = new GroupCpuMeter();
  const nodeStart = process.cpuUsage();
  let activeAt = 0;
  let firstFrameAt = 0;
  const sampler = setInterval(() => {
    for (const pid of c.pids()) meter.follow(pid);
    meter.sample();
  }, 500);
  c.on('update', (i) => {
    if (i.status === EgressStatus.EGRESS_ACTIVE) {
      activeAt = Date.now();
      firstFrameAt = Number(i.fileResults[0]?.startedAt ?? 0n) / 1e6;
      setTimeout(() => c.stop(), firstFrameAt + seconds * 1000 - Date.now());
    }
  });
  const info = await c.run();
  clearInterval(sampler);
  const nodeCpu = process.cpuUsage(nodeStart);
  if (info.status !== EgressStatus.EGRESS_COMPLETE) throw new Error(`${label}: ${EgressStatus[info.status]} ${info.error}`);
  const recordedS = Number(info.fileResults[0]?.duration ?? 0n) / 1e9;
  const nodeS = (nodeCpu.user + nodeCpu.system) / 1e6;
  const cpuS = meter.total() + nodeS;
  const [browserPid] = (host as ChromiumHost | null)?.pids() ?? [];
  const groups = meter.byGroup();
  const browserS = groups.find((g) => g.pgid === browserPid)?.cpuS ?? 0;
  const roles = meter
    .byRole()
    .filter((r) => r.role.startsWith('chromium:') && r.cpuS >= 0.05)
    .map((r) => `${r.role.slice(9)} ${r.cpuS.toFixed(1)}`)
    .join(', ');
  const breakdown = `browser ${browserS.toFixed(1)} s [${roles}], gst ${(meter.total() - browserS).toFixed(1)} s, node ${nodeS.toFixed(1)} s`;
  const enc = plan.encoding;
  const floor = runOpts.floors ? await floorCpu(videoEncodingOf(enc, Number(arg('threads', '0'))), audioEncodingOf(enc), seconds, join(dir, 'floor.mp4')) : 0;
  const render = runOpts.floors
    ? await renderFloorCpu(`${base}${page}/`, { width: enc.width, height: enc.height, framerate: enc.framerate }, seconds, join(dir, 'render-floor'), extraFlags)
    : { cpuS: 0, roles: [] };
  const stats = c.transportStats();
  return {
    label,
    recordedS,
    cpuS,
    perMinute: (cpuS / recordedS) * 60,
    floorPerMinute: (floor / seconds) * 60,
    renderFloorPerMinute: (render.cpuS / seconds) * 60,
    renderFloorBreakdown: render.roles
      .filter((r) => r.role.startsWith('chromium:') && r.cpuS >= 0.05)
      .map((r) => `${r.role.slice(9)} ${r.cpuS.toFixed(1)}`)
      .join(', '),
    requestToFirstFrameMs: firstFrameAt - t0,
    requestToActiveMs: activeAt - t0,
    split: startupSplit(t0, (host as ChromiumHost | null)?.startupMarks ?? new Map(), firstFrameAt),
    framesIn: stats?.videoFramesWritten ?? 0,
    framesRepeated: stats?.videoFramesRepeated ?? 0,
    framesDropped: stats?.videoFramesDropped ?? 0,
    breakdown,
    videoPath: c.videoPath,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** `--latency N`: request→first frame of N short recordings, cold and (with --pool) warm, interleaved. */
async function latencyRuns(preset: EncodingOptionsPreset, label: string, runs: number, pool: boolean, seconds: number, page: string, base: string, dir: string): Promise<void> {
  const modes = pool ? (['cold', 'warm'] as const) : (['cold'] as const);
  const results: Record<string, number[]> = { cold: [], warm: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of modes) {
      let warm: WarmBrowser | null = null;
      if (mode === 'warm') {
        warm = await WarmBrowser.launch({ workDir: join(dir, `warm-${i}`), insecure: false, sandbox: false, extraFlags: {}, bin: findChromium() });
      }
      // Both start from a machine at rest (the warm browser idle, as in the pool).
      await new Promise((r) => setTimeout(r, 1500));
      const w = warm;
      const f = await runOne(preset, label, seconds, page, base, dir, { floors: false, ...(w ? { hostFactory: (o: CaptureHostOptions) => new ChromiumHost(o, w) } : {}) });
      results[mode]?.push(f.requestToFirstFrameMs);
      process.stdout.write(`${label} ${mode} #${i + 1}: request→first frame ${Math.round(f.requestToFirstFrameMs)} ms (${f.split}), recorded ${f.recordedS.toFixed(2)} s\n`);
    }
  }
  for (const mode of modes) {
    const xs = results[mode] ?? [];
    process.stdout.write(`${label} ${mode}: request→first frame p50 ${Math.round(median(xs))} ms over ${xs.length} runs (min ${Math.round(Math.min(...xs))}, max ${Math.round(Math.max(...xs))})\n`);
  }
}

async function main(): Promise<void> {
  setLogLevel('warn');
  const latency = Number(arg('latency', '0'));
  const seconds = Number(arg('seconds', '60'));
  const page = arg('page', 'demo');
  const presets = arg('presets', '720,1080').split(',');
  const dir = await mkdtemp(join(tmpdir(), 'egress-bench-'));
  const server = new StaticServer(TEMPLATES);
  const base = await server.listen();
  try {
    for (const p of presets) {
      const [preset, label] = p === '1080' ? [EncodingOptionsPreset.H264_1080P_30, '1080p30'] : [EncodingOptionsPreset.H264_720P_30, '720p30'];
      if (latency > 0) {
        await latencyRuns(preset, label, latency, process.argv.includes('--pool'), Number(arg('seconds', '2')), page, base, dir);
        continue;
      }
      const f = await runOne(preset, label, seconds, page, base, dir);
      process.stdout.write(
        `${f.label} [video path: ${f.videoPath}]: ${f.perMinute.toFixed(1)} CPU-s per recorded minute (encode floor: the encoder alone on generated frames ${f.floorPerMinute.toFixed(1)}; ` +
          `render floor: the page in the same browser, no capture ${f.renderFloorPerMinute.toFixed(1)} [${f.renderFloorBreakdown}]; ` +
          `ours / (render + encode) ${(f.perMinute / (f.renderFloorPerMinute + f.floorPerMinute)).toFixed(2)}), ` +
          `recorded ${f.recordedS.toFixed(2)} s using ${f.cpuS.toFixed(1)} CPU-s (${f.breakdown}); request→first frame ${Math.round(f.requestToFirstFrameMs)} ms, request→ACTIVE ${f.requestToActiveMs} ms (${f.split}); ` +
          `frames captured ${f.framesIn}, repeated ${f.framesRepeated}, dropped ${f.framesDropped}\n`,
      );
    }
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
