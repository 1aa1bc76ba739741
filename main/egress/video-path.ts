import { availableParallelism } from 'node:os';
import type { EncodingPlan, PipelinePlan } from '../contracts/pipeline.js';
import type { PageEncodeOptions } from '../capture/capture-host.js';

/**
 * Which encoder a page egress's video goes through:
 *  - `x264`: raw frames from the page into GStreamer's x264 (veryfast) — the original's encoder and
 *    settings, the default;
 *  - `browser`: the page encodes with WebCodecs (Chromium's software H.264 encoder, OpenH264) and
 *    sends H.264 that is muxed without re-encoding. It skips copying raw frames out of the page
 *    and x264: at 1080p30 on two cores the raw path cannot keep up (measured with bench/web-egress:
 *    121.9 CPU-s per recorded minute and frames dropped), the in-page encoder costs ~27 CPU-s/min.
 *
 * Config `video_encode_path` (auto | x264 | browser) decides; `auto` picks `browser` only where the
 * raw path would not run in real time (see RAW_PATH_MPX_PER_CORE). Either way the browser path is
 * taken only when every output of the request can be made from the page's H.264: it has no
 * decoded frames for image outputs, and (for now) only file outputs are wired to it — anything
 * else records through x264 whatever the setting.
 */

export type VideoEncodePathSetting = 'auto' | 'x264' | 'browser';
export type VideoEncodePath = 'x264' | 'browser';

/**
 * Pixels per second one core carries through the raw path (render, copy out of the tab, x264), from
 * bench/web-egress on a 2-core machine: 1080p30 (62.2 Mpx/s) cost 121.9 CPU-s per recorded minute,
 * i.e. 2.03 cores ≈ 30 Mpx/s per core; 720p30 (27.6 Mpx/s) cost 76.7, 1.28 cores.
 */
export const RAW_PATH_MPX_PER_CORE = 30;
/** Share of the machine the raw path may take for one egress before `auto` encodes in the page. */
export const RAW_PATH_MAX_SHARE = 0.75;

export interface VideoPathChoice {
  readonly path: VideoEncodePath;
  /** Why, for the log. */
  readonly reason: string;
}

/** Why the browser path cannot make this request's outputs (null when it can). */
export function browserPathRefusal(plan: PipelinePlan, hostCanEncode: boolean): string | null {
  if (!hostCanEncode) return 'the capture host cannot encode in the page';
  if (!plan.videoEnabled) return 'no video';
  if (plan.source.kind !== 'web' && plan.source.kind !== 'template') return 'not a page egress';
  if (plan.images && plan.images.length > 0) return 'image outputs need decoded frames';
  if (plan.segments) return 'segmented (HLS) output is not wired to the in-page encoder';
  if (plan.stream) return 'stream outputs are not wired to the in-page encoder';
  if (!plan.file || plan.file.fileType !== 'mp4') return 'only MP4 file outputs are wired to the in-page encoder';
  return null;
}

/** Estimated cores the raw path needs for this encoding. */
export function rawPathCores(e: Pick<EncodingPlan, 'width' | 'height' | 'framerate'>): number {
  return (e.width * e.height * e.framerate) / 1e6 / RAW_PATH_MPX_PER_CORE;
}

export function chooseVideoPath(plan: PipelinePlan, setting: VideoEncodePathSetting, hostCanEncode: boolean, cores = availableParallelism()): VideoPathChoice {
  if (setting === 'x264') return { path: 'x264', reason: 'video_encode_path: x264' };
  const refusal = browserPathRefusal(plan, hostCanEncode);
  if (refusal) return { path: 'x264', reason: setting === 'browser' ? `video_encode_path: browser, but ${refusal}` : refusal };
  if (setting === 'browser') return { path: 'browser', reason: 'video_encode_path: browser' };
  const need = rawPathCores(plan.encoding);
  const budget = RAW_PATH_MAX_SHARE * cores;
  return need > budget
    ? { path: 'browser', reason: `raw path needs ~${need.toFixed(2)} cores, more than ${budget.toFixed(2)} of ${cores}` }
    : { path: 'x264', reason: `raw path needs ~${need.toFixed(2)} cores of ${cores}` };
}

/** H.264 levels (Table A-1): max macroblocks per second and per frame. */
const LEVELS: readonly [number, number, number][] = [
  [0x1f, 108_000, 3_600],
  [0x20, 216_000, 5_120],
  [0x28, 245_760, 8_192],
  [0x2a, 522_240, 8_704],
  [0x32, 589_824, 22_080],
  [0x33, 983_040, 36_864],
  [0x34, 2_073_600, 36_864],
];

/** The avc1 codec string for the plan's profile at the lowest level that fits its size and rate. */
export function avcCodecString(e: Pick<EncodingPlan, 'width' | 'height' | 'framerate' | 'videoProfile'>): string {
  const mbs = Math.ceil(e.width / 16) * Math.ceil(e.height / 16);
  const level = LEVELS.find(([, mbps, fs]) => mbs <= fs && mbs * e.framerate <= mbps)?.[0] ?? 0x34;
  const profile = e.videoProfile === 'baseline' ? '42e0' : e.videoProfile === 'high' ? '6400' : '4d00';
  return `avc1.${profile}${level.toString(16).padStart(2, '0')}`;
}

/** Default keyframe spacing of the in-page encoder when the request sets none (x264's is 250 frames). */
const DEFAULT_KEY_FRAME_INTERVAL_S = 4;

/** What the page's encoder is configured with. */
export function pageEncodeOptions(e: EncodingPlan): PageEncodeOptions {
  return {
    codec: avcCodecString(e),
    width: e.width,
    height: e.height,
    framerate: e.framerate,
    bitrate: e.videoBitrateKbps * 1000,
    keyFrameInterval: Math.max(1, Math.round((e.keyFrameIntervalS || DEFAULT_KEY_FRAME_INTERVAL_S) * e.framerate)),
  };
}
