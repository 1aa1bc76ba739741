import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

/** Media checks on real output with ffprobe/ffmpeg: what "it works" means. */

const run = promisify(execFile);

export interface ProbedStream {
  readonly codec_type: 'video' | 'audio' | string;
  readonly codec_name: string;
  readonly profile?: string;
  readonly width?: number;
  readonly height?: number;
  readonly avg_frame_rate?: string;
  readonly sample_rate?: string;
  readonly channels?: number;
  readonly channel_layout?: string;
  readonly bit_rate?: string;
  readonly duration?: string;
  readonly nb_frames?: string;
  readonly start_time?: string;
}

export interface Probe {
  readonly streams: ProbedStream[];
  readonly format: { readonly duration?: string; readonly size?: string; readonly format_name: string; readonly bit_rate?: string };
}

/**
 * The A/V pages' media (test/fixtures/pages/media-avsync plays `av.mp4` next to it): black 1280x720
 * with a white flash and a 1 kHz beep at the same instant every `periodS` seconds (flash: whole
 * frames from k·periodS to k·periodS + 0.1 s; beep gated per 1 ms block at the same instants).
 *
 * At the default 1 s and 30 fps every flash falls at the same phase of a 30 fps capture, so all of
 * a recording's flashes carry the same sub-frame rounding. `periodS: 1.04` (26 frames of a 25 fps
 * file, 31.2 frames of a 30 fps capture) walks the flash through five phases of the capture's frame,
 * so the rounding averages out over any five flashes and a drift finer than a frame can be seen.
 */
export async function makeFlashBeepFile(path: string, seconds: number, periodS = 1): Promise<void> {
  // The file's rate must put every flash on a frame boundary: 30 fps for whole seconds, 25 fps for 1.04 s.
  // Half a millisecond of slack keeps mod() from rounding a boundary frame (2.08 s) just under it.
  const rate = Number.isInteger(periodS) ? 30 : 25;
  if (Math.abs(Math.round(periodS * rate) - periodS * rate) > 1e-9) throw new Error(`flash period ${periodS} s is not a whole number of ${rate} fps frames`);
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=black:s=1280x720:r=${rate}:d=${seconds},drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t+0.0005,${periodS}),0.1)'`,
    '-f', 'lavfi', '-i', `sine=f=1000:r=48000:d=${seconds},asetnsamples=n=48,volume='if(lt(mod(t+0.0005,${periodS}),0.1),1,0)':eval=frame`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(rate), '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-shortest',
    path,
  ]);
}

export async function ffprobe(path: string): Promise<Probe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Probe;
}

export function videoStream(p: Probe): ProbedStream | undefined {
  return p.streams.find((s) => s.codec_type === 'video');
}

export function audioStream(p: Probe): ProbedStream | undefined {
  return p.streams.find((s) => s.codec_type === 'audio');
}

/**
 * Runs of identical pictures longer than 2 frames (at 30 fps; ffmpeg freezedetect, in seconds of the
 * file): on an animated page (the demo page changes every frame) such a run is a frozen picture.
 */
export async function frozenRuns(path: string, durationS: number): Promise<{ s: number; e: number }[]> {
  const { stderr } = await run('ffmpeg', ['-v', 'info', '-i', path, '-vf', 'freezedetect=n=0.0005:d=0.07', '-an', '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
  const starts = [...stderr.matchAll(/freeze_start: ([\d.]+)/g)].map((x) => Number(x[1]));
  const ends = [...stderr.matchAll(/freeze_end: ([\d.]+)/g)].map((x) => Number(x[1]));
  return starts.map((s, i) => ({ s, e: ends[i] ?? durationS }));
}

export function fps(s: ProbedStream): number {
  const [n, d] = (s.avg_frame_rate ?? '0/1').split('/').map(Number);
  return (n ?? 0) / (d || 1);
}

/** Exact average fps from frame count and duration (independent of the container's rate field). */
export async function countedFps(path: string): Promise<{ frames: number; duration: number; fps: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets,duration', '-of', 'json', path]);
  const s = (JSON.parse(stdout) as { streams: { nb_read_packets: string; duration: string }[] }).streams[0];
  const frames = Number(s?.nb_read_packets ?? 0);
  const duration = Number(s?.duration ?? 0);
  return { frames, duration, fps: duration > 0 ? frames / duration : 0 };
}

function collect(cmd: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${cmd} failed: ${err.slice(-500)}`))));
  });
}

/** Times (s) at which the picture turns bright (mean luma crosses 50 %), from a constant-rate decode. */
export async function flashOnsets(path: string, rate = 30): Promise<number[]> {
  const raw = await collect('ffmpeg', ['-v', 'error', '-i', path, '-map', '0:v:0', '-vf', `fps=${rate},scale=16:9,format=gray`, '-f', 'rawvideo', '-']);
  const per = 16 * 9;
  const out: number[] = [];
  let prevBright = false;
  for (let i = 0; i * per < raw.length; i++) {
    let sum = 0;
    for (let j = 0; j < per; j++) sum += raw[i * per + j] ?? 0;
    const bright = sum / per > 128;
    if (bright && !prevBright) out.push(i / rate);
    prevBright = bright;
  }
  return out;
}

/** Times (s) at which a beep starts: envelope over a threshold after at least 300 ms of quiet. */
export async function beepOnsets(path: string): Promise<number[]> {
  const rate = 48000;
  const raw = await collect('ffmpeg', ['-v', 'error', '-i', path, '-map', '0:a:0', '-ac', '1', '-ar', String(rate), '-f', 's16le', '-']);
  const n = raw.length / 2;
  const win = 48; // 1 ms
  const env: number[] = [];
  for (let i = 0; i + win <= n; i += win) {
    let peak = 0;
    for (let j = 0; j < win; j++) peak = Math.max(peak, Math.abs(raw.readInt16LE((i + j) * 2)));
    env.push(peak / 32768);
  }
  // A loop, not Math.max(...env): a 10-minute file has 600 000 windows, too many arguments for a call.
  const max = env.reduce((m, x) => (x > m ? x : m), 0);
  if (max < 0.05) return [];
  const thr = max * 0.3;
  const out: number[] = [];
  let quiet = 300;
  for (let k = 0; k < env.length; k++) {
    if ((env[k] ?? 0) > thr) {
      if (quiet >= 300) out.push(k / 1000);
      quiet = 0;
    } else quiet++;
  }
  return out;
}

export interface SyncReport {
  readonly pairs: number;
  readonly flashes: number;
  readonly beeps: number;
  /** video − audio, seconds, per matched pair, in time order. */
  readonly offsets: number[];
  /** Percentiles and maximum of |offset|, seconds. */
  readonly p50: number;
  readonly p80: number;
  readonly max: number;
  /** Median of the signed offsets, seconds. */
  readonly median: number;
  /** Mean offset over the last `driftWindow` s minus the mean over the first (10 s unless told), seconds. */
  readonly drift: number;
  /** Least-squares slope of offset over time, ms of offset per minute. */
  readonly slopeMsPerMin: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

/** Pairs each flash with the nearest beep within `window` s: (beep time, video − audio). */
export function pairOnsets(flashes: number[], beeps: number[], window = 0.45): { t: number; off: number }[] {
  const pairs: { t: number; off: number }[] = [];
  for (const f of flashes) {
    let best: number | null = null;
    for (const b of beeps) if (best === null || Math.abs(f - b) < Math.abs(f - best)) best = b;
    if (best !== null && Math.abs(f - best) < window) pairs.push({ t: best, off: f - best });
  }
  return pairs;
}

export async function measureAvSync(path: string): Promise<SyncReport> {
  const [flashes, beeps] = await Promise.all([flashOnsets(path), beepOnsets(path)]);
  return syncReport(pairOnsets(flashes, beeps), flashes.length, beeps.length);
}

/** Offset statistics of matched (beep time, video − audio) pairs, times in seconds. */
export function syncReport(pairs: { t: number; off: number }[], flashes: number, beeps: number, driftWindow = 10): SyncReport {
  const offsets = pairs.map((p) => p.off);
  const abs = offsets.map(Math.abs).sort((a, b) => a - b);
  const signed = [...offsets].sort((a, b) => a - b);
  const end = pairs.length ? (pairs[pairs.length - 1] as { t: number }).t : 0;
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const mt = mean(pairs.map((p) => p.t));
  const mo = mean(offsets);
  let sxy = 0;
  let sxx = 0;
  for (const p of pairs) {
    sxy += (p.t - mt) * (p.off - mo);
    sxx += (p.t - mt) ** 2;
  }
  return {
    pairs: pairs.length,
    flashes,
    beeps,
    offsets,
    p50: percentile(abs, 0.5),
    p80: percentile(abs, 0.8),
    max: abs.length ? (abs[abs.length - 1] as number) : NaN,
    median: signed.length ? (signed.length % 2 ? (signed[(signed.length - 1) / 2] as number) : ((signed[signed.length / 2 - 1] as number) + (signed[signed.length / 2] as number)) / 2) : NaN,
    drift: mean(pairs.filter((p) => p.t > end - driftWindow).map((p) => p.off)) - mean(pairs.filter((p) => p.t < driftWindow).map((p) => p.off)),
    slopeMsPerMin: sxx > 0 ? (sxy / sxx) * 1000 * 60 : 0,
  };
}
