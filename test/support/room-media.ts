/**
 * Content checks on a recorded room (MP4/MKV/WebM/OGG/MP3) made from synthetic publishers
 * (publisher.ts): per publisher, is its colour in its region, is its tone in the audio, and are
 * its flashes and beeps in sync.
 *
 *   const r = await analyseRoomMedia(file, [
 *     { identity: 'a', rect: { x: 0, y: 0, w: 640, h: 720 }, colour: [220, 40, 40], toneHz: 523 },
 *     { identity: 'b', rect: { x: 640, y: 0, w: 640, h: 720 }, colour: [40, 60, 220], toneHz: 784 },
 *   ]);
 *   presence(r, 'a', 5, 35)   // { colour: 1, tone: 1, seconds: 30 }
 *   r.publishers[0].sync.p80  // s
 *
 * Video: one ffmpeg decode at the file's own frame times (no resampling: `-fps_mode passthrough`,
 * PTS read from `showinfo`), scaled down to `analysisWidth` (160 px by default) as rgb24 on a pipe.
 * A region shows its colour in a frame when ≥ `colourFraction` (30 %) of its pixels — inset by 20
 * output px from the sides and bottom, not at the top — are within `colourTolerance` (40) of the
 * colour on every RGB channel; a flash frame is one whose inset region is ≥ 50 % near-white (every
 * channel ≥ 190), and a flash onset is the first flash frame after ≥ 300 ms without one.
 *
 * Audio: one decode to 48 kHz stereo f32 (padded with silence from t = 0 so sample n is at n/48000 s
 * on the same timeline as the video PTS: both decodes use -copyts). Per tone and channel, a Goertzel
 * over 40 ms Hann windows every 5 ms (40 ms rather than 20 so 784 and 880 Hz, 96 Hz apart, do not
 * leak into each other: Hann sidelobes < −40 dB there). A beep onset is where the level rises through
 * half of that beep's own peak (the centre of a Hann window straddling a step sees half the
 * amplitude, so this is unbiased), after ≥ 300 ms below the detection threshold.
 */
import { spawn } from 'node:child_process';
import { ffprobe, pairOnsets, syncReport, type SyncReport } from './media.js';

export type Rgb = readonly [number, number, number];

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface PublisherRegion {
  identity: string;
  /** Where the publisher's video is, in output pixels (omit for an audio-only check). */
  rect?: Rect;
  colour: Rgb;
  toneHz: number;
  /** Expected channel(s) of its tone (informational; the report says what was found). */
  channel?: 'both' | 'left' | 'right';
}

export interface AnalyseOptions {
  /** Width of the analysis picture (default 160; height keeps the aspect ratio). */
  analysisWidth?: number;
  /** Per-channel RGB tolerance (default 40). */
  colourTolerance?: number;
  /** Fraction of the inset region that must match (default 0.3). */
  colourFraction?: number;
  /** Region inset in output px (default 20). */
  inset?: number;
  /** Tone level (amplitude, full scale 1) above which a tone is present (default 0.05 ≈ −26 dBFS). */
  toneThreshold?: number;
  /** Window of flash↔beep pairing, s (default 0.45). */
  pairWindow?: number;
  /** Window of the drift figure, s (default 20). */
  driftWindow?: number;
  /** Skip the video or the audio decode. */
  video?: boolean;
  audio?: boolean;
}

export interface PublisherMedia {
  identity: string;
  toneHz: number;
  /** Per second s (covering [s, s+1) of the file's timeline): colour seen in some frame. */
  colourSeconds: boolean[];
  /** Per second: the best matching fraction of a frame of that second. */
  colourFractionBySecond: number[];
  /** Flash onset times (s). */
  flashOnsets: number[];
  /** Per second: tone level (max over the second, max of the channels) ≥ threshold. */
  toneSeconds: boolean[];
  /** Per second: peak tone level per channel. */
  toneLevelBySecond: { left: number[]; right: number[] };
  /** Beep onset times (s). */
  beepOnsets: number[];
  /** Which channel(s) carry the tone, and the mean left/right level ratio while it sounds. */
  channel: 'both' | 'left' | 'right' | 'none';
  leftRightRatio: number;
  /** Flash ↔ beep offsets (video − audio, s). */
  sync: SyncReport;
}

export interface RoomMediaReport {
  path: string;
  width: number;
  height: number;
  /** Seconds covered by the per-second arrays. */
  seconds: number;
  videoFrames: number;
  /** Per second: how many video frames the file has in it (a passthrough file has gaps where its source sent none). */
  framesBySecond: number[];
  /** Wall time the analysis took, ms. */
  analysisMs: number;
  publishers: PublisherMedia[];
}

function run(cmd: string, args: string[], onStderr?: (s: string) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    let partial = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c: Buffer) => {
      const s = c.toString();
      err = (err + s).slice(-4000);
      if (onStderr) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) onStderr(l);
      }
    });
    p.on('error', reject);
    p.on('exit', (code) => {
      if (onStderr && partial) onStderr(partial);
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-1500)}`));
    });
  });
}

interface VideoAnalysis {
  times: number[];
  /** Per region, per frame: colour fraction and white fraction. */
  colour: Float32Array[];
  white: Float32Array[];
}

async function analyseVideo(path: string, width: number, height: number, regions: PublisherRegion[], o: Required<Pick<AnalyseOptions, 'analysisWidth' | 'colourTolerance' | 'inset'>>): Promise<VideoAnalysis> {
  const aw = Math.max(16, Math.round(o.analysisWidth / 2) * 2);
  const ah = Math.max(8, Math.round((aw * height) / width / 2) * 2);
  const times: number[] = [];
  const raw = await run(
    'ffmpeg',
    ['-hide_banner', '-nostats', '-loglevel', 'info', '-copyts', '-threads', '2', '-i', path, '-map', '0:v:0', '-vf', `scale=${aw}:${ah}:flags=area,showinfo`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    (line) => {
      const m = /showinfo.*pts_time:\s*(-?[\d.]+)/.exec(line);
      if (m) times.push(Number(m[1]));
    },
  );
  const per = aw * ah * 3;
  const n = Math.min(times.length, Math.floor(raw.length / per));
  const sx = aw / width;
  const sy = ah / height;
  const boxes = regions.map((r) => {
    if (!r.rect) return undefined;
    const x0 = Math.max(0, Math.round((r.rect.x + o.inset) * sx));
    const x1 = Math.min(aw, Math.round((r.rect.x + r.rect.w - o.inset) * sx));
    const y0 = Math.max(0, Math.round(r.rect.y * sy));
    const y1 = Math.min(ah, Math.round((r.rect.y + r.rect.h - o.inset) * sy));
    return x1 > x0 && y1 > y0 ? { x0, x1, y0, y1 } : undefined;
  });
  const colour = regions.map(() => new Float32Array(n));
  const white = regions.map(() => new Float32Array(n));
  const tol = o.colourTolerance;
  for (let f = 0; f < n; f++) {
    const base = f * per;
    regions.forEach((r, i) => {
      const b = boxes[i];
      if (!b) return;
      const [R, G, B] = r.colour;
      let match = 0;
      let wh = 0;
      for (let y = b.y0; y < b.y1; y++) {
        let p = base + (y * aw + b.x0) * 3;
        for (let x = b.x0; x < b.x1; x++, p += 3) {
          const pr = raw[p] as number;
          const pg = raw[p + 1] as number;
          const pb = raw[p + 2] as number;
          if (Math.abs(pr - R) <= tol && Math.abs(pg - G) <= tol && Math.abs(pb - B) <= tol) match++;
          if (pr >= 190 && pg >= 190 && pb >= 190) wh++;
        }
      }
      const total = (b.x1 - b.x0) * (b.y1 - b.y0);
      (colour[i] as Float32Array)[f] = match / total;
      (white[i] as Float32Array)[f] = wh / total;
    });
  }
  return { times: times.slice(0, n), colour, white };
}

const RATE = 48000;
const HOP = 240; // 5 ms
const WIN = 1920; // 40 ms

interface ToneTrack {
  /** Level per hop, per channel; hop h is centred at (h·HOP + WIN/2) / RATE s. */
  left: Float32Array;
  right: Float32Array;
}

async function decodeAudio(path: string): Promise<{ left: Float32Array; right: Float32Array }> {
  const raw = await run('ffmpeg', ['-hide_banner', '-nostats', '-loglevel', 'error', '-copyts', '-i', path, '-map', '0:a:0', '-af', 'aresample=48000:async=1:first_pts=0', '-ac', '2', '-ar', String(RATE), '-f', 'f32le', '-']);
  const all = new Float32Array(raw.buffer, raw.byteOffset, Math.floor(raw.length / 4));
  const n = all.length >> 1;
  const left = new Float32Array(n);
  const right = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    left[i] = all[2 * i] as number;
    right[i] = all[2 * i + 1] as number;
  }
  return { left, right };
}

function toneTrack(ch: { left: Float32Array; right: Float32Array }, hz: number): ToneTrack {
  const wc = new Float32Array(WIN);
  const ws = new Float32Array(WIN);
  let wsum = 0;
  for (let k = 0; k < WIN; k++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * (k + 0.5)) / WIN);
    wsum += w;
    wc[k] = w * Math.cos((2 * Math.PI * hz * k) / RATE);
    ws[k] = w * Math.sin((2 * Math.PI * hz * k) / RATE);
  }
  const hops = Math.max(0, Math.floor((ch.left.length - WIN) / HOP) + 1);
  const level = (x: Float32Array): Float32Array => {
    const out = new Float32Array(hops);
    for (let h = 0; h < hops; h++) {
      const o = h * HOP;
      let re = 0;
      let im = 0;
      for (let k = 0; k < WIN; k++) {
        const v = x[o + k] as number;
        re += v * (wc[k] as number);
        im += v * (ws[k] as number);
      }
      out[h] = (2 * Math.sqrt(re * re + im * im)) / wsum;
    }
    return out;
  };
  return { left: level(ch.left), right: level(ch.right) };
}

const hopTime = (h: number): number => (h * HOP + WIN / 2) / RATE;

function beepOnsetsOf(t: ToneTrack, threshold: number): number[] {
  const n = t.left.length;
  const lv = (h: number): number => Math.max(t.left[h] as number, t.right[h] as number);
  const out: number[] = [];
  let quietSince = -Infinity;
  let h = 0;
  while (h < n) {
    if (lv(h) < threshold) {
      if (quietSince === -Infinity) quietSince = hopTime(h);
      h++;
      continue;
    }
    const quiet = quietSince !== -Infinity && hopTime(h) - quietSince >= 0.3;
    // The beep's own peak within the next 120 ms, then the half-peak crossing before it.
    let peakH = h;
    for (let k = h; k < Math.min(n, h + 24); k++) if (lv(k) > lv(peakH)) peakH = k;
    const half = lv(peakH) / 2;
    let c = peakH;
    while (c > 0 && lv(c - 1) >= half) c--;
    if (quiet) {
      const a = c > 0 ? lv(c - 1) : 0;
      const b = lv(c);
      const frac = b > a ? (half - a) / (b - a) : 1;
      out.push(hopTime(c - 1) + frac * (hopTime(c) - hopTime(c - 1)));
    }
    // Skip to the end of this beep.
    h = peakH;
    while (h < n && lv(h) >= threshold) h++;
    quietSince = -Infinity;
  }
  return out;
}

function flashOnsetsOf(times: number[], white: Float32Array): number[] {
  const out: number[] = [];
  let lastFlash = -Infinity;
  let prev = false;
  for (let f = 0; f < times.length; f++) {
    const t = times[f] as number;
    const on = (white[f] as number) >= 0.5;
    if (on && !prev && t - lastFlash >= 0.3) out.push(t);
    if (on) lastFlash = t;
    prev = on;
  }
  return out;
}

/** Analyses the recorded file for each publisher region / tone. */
export async function analyseRoomMedia(path: string, regions: PublisherRegion[], opts: AnalyseOptions = {}): Promise<RoomMediaReport> {
  const started = performance.now();
  const probe = await ffprobe(path);
  const vs = probe.streams.find((s) => s.codec_type === 'video');
  const as = probe.streams.find((s) => s.codec_type === 'audio');
  const width = vs?.width ?? 0;
  const height = vs?.height ?? 0;
  const tol = opts.colourTolerance ?? 40;
  const frac = opts.colourFraction ?? 0.3;
  const thr = opts.toneThreshold ?? 0.05;
  const doVideo = (opts.video ?? true) && !!vs && regions.some((r) => r.rect);
  const doAudio = (opts.audio ?? true) && !!as;

  const [va, audio] = await Promise.all([
    doVideo ? analyseVideo(path, width, height, regions, { analysisWidth: opts.analysisWidth ?? 160, colourTolerance: tol, inset: opts.inset ?? 20 }) : Promise.resolve(undefined),
    doAudio ? decodeAudio(path) : Promise.resolve(undefined),
  ]);
  const duration = Math.max(va?.times.length ? (va.times[va.times.length - 1] as number) : 0, audio ? audio.left.length / RATE : 0, Number(probe.format.duration ?? 0));
  const seconds = Math.ceil(duration);

  const publishers = regions.map((r, i): PublisherMedia => {
    const colourFractionBySecond = new Array<number>(seconds).fill(0);
    let flashes: number[] = [];
    if (va && r.rect) {
      const col = va.colour[i] as Float32Array;
      va.times.forEach((t, f) => {
        const s = Math.floor(t);
        if (s >= 0 && s < seconds) colourFractionBySecond[s] = Math.max(colourFractionBySecond[s] as number, col[f] as number);
      });
      flashes = flashOnsetsOf(va.times, va.white[i] as Float32Array);
    }
    const left = new Array<number>(seconds).fill(0);
    const right = new Array<number>(seconds).fill(0);
    let beeps: number[] = [];
    let channel: PublisherMedia['channel'] = 'none';
    let ratio = NaN;
    if (audio) {
      const tt = toneTrack(audio, r.toneHz);
      let sl = 0;
      let sr = 0;
      for (let h = 0; h < tt.left.length; h++) {
        const s = Math.floor(hopTime(h));
        const l = tt.left[h] as number;
        const rr = tt.right[h] as number;
        if (s < seconds) {
          left[s] = Math.max(left[s] as number, l);
          right[s] = Math.max(right[s] as number, rr);
        }
        if (Math.max(l, rr) >= thr) {
          sl += l;
          sr += rr;
        }
      }
      beeps = beepOnsetsOf(tt, thr);
      if (sl + sr > 0) {
        ratio = sr > 0 ? sl / sr : Infinity;
        channel = ratio >= 0.5 && ratio <= 2 ? 'both' : ratio > 2 ? 'left' : 'right';
      }
    }
    return {
      identity: r.identity,
      toneHz: r.toneHz,
      colourSeconds: colourFractionBySecond.map((x) => x >= frac),
      colourFractionBySecond,
      flashOnsets: flashes,
      toneSeconds: left.map((l, s) => Math.max(l, right[s] as number) >= thr),
      toneLevelBySecond: { left, right },
      beepOnsets: beeps,
      channel,
      leftRightRatio: ratio,
      sync: syncReport(pairOnsets(flashes, beeps, opts.pairWindow ?? 0.45), flashes.length, beeps.length, opts.driftWindow ?? 20),
    };
  });
  const framesBySecond = new Array<number>(seconds).fill(0);
  for (const t of va?.times ?? []) {
    const s = Math.floor(t);
    if (s >= 0 && s < seconds) framesBySecond[s] = (framesBySecond[s] as number) + 1;
  }
  return { path, width, height, seconds, videoFrames: va?.times.length ?? 0, framesBySecond, analysisMs: Math.round(performance.now() - started), publishers };
}

export interface Presence {
  /** Fractions of the seconds in [from, to) in which the colour / tone was present. */
  colour: number;
  tone: number;
  seconds: number;
}

/** Fraction of the whole seconds in [from, to) in which a publisher's colour / tone was present. */
export function presence(report: RoomMediaReport, identity: string, from: number, to: number): Presence {
  const p = report.publishers.find((x) => x.identity === identity);
  if (!p) throw new Error(`no publisher ${identity} in the report`);
  const a = Math.max(0, Math.ceil(from));
  const b = Math.min(report.seconds, Math.floor(to));
  const n = Math.max(0, b - a);
  let c = 0;
  let t = 0;
  for (let s = a; s < b; s++) {
    if (p.colourSeconds[s]) c++;
    if (p.toneSeconds[s]) t++;
  }
  return { colour: n ? c / n : NaN, tone: n ? t / n : NaN, seconds: n };
}

/** presence() for every publisher of the report. */
export function presenceSummary(report: RoomMediaReport, from: number, to: number): Record<string, Presence> {
  return Object.fromEntries(report.publishers.map((p) => [p.identity, presence(report, p.identity, from, to)]));
}

/** One line per publisher, for test output. */
export function formatRoomMedia(report: RoomMediaReport): string {
  const ms = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 1000)}` : 'n/a');
  return report.publishers
    .map((p) => {
      const c = p.colourSeconds.filter(Boolean).length;
      const t = p.toneSeconds.filter(Boolean).length;
      return `${p.identity}: colour ${c}/${report.seconds} s, tone ${p.toneHz} Hz ${t}/${report.seconds} s (${p.channel}, L/R ${p.leftRightRatio.toFixed(2)}), flashes ${p.sync.flashes}, beeps ${p.sync.beeps}, pairs ${p.sync.pairs}, offset median ${ms(p.sync.median)} ms p50 ${ms(p.sync.p50)} p80 ${ms(p.sync.p80)} max ${ms(p.sync.max)} ms, drift ${ms(p.sync.drift)} ms, slope ${p.sync.slopeMsPerMin.toFixed(1)} ms/min`;
    })
    .concat(`analysed ${report.width}x${report.height}, ${report.videoFrames} frames, ${report.seconds} s in ${report.analysisMs} ms`)
    .join('\n');
}
