import { EncodingOptionsPreset, type EncodingOptions } from '@livekit/protocol';
import { DEFAULT_FRAMERATE, DEFAULT_HEIGHT, DEFAULT_WIDTH, PRESETS } from './encoding.js';

/**
 * The admission cost model: how the CPU reserved for a request grows with the encoding it asks for.
 *
 * Each request type has a base cost, `cpu_cost.<type>_cpu_cost`: the cores reserved for that type at
 * the reference encoding, H264_720P_30 (the original's default preset). A request encoding more or
 * fewer pixels per second reserves
 *
 *     base × (fixed + (1 − fixed) × pixelRate / pixelRate(720p30))
 *
 * where `fixed` is the share of the 720p30 cost that does not depend on the output encoding (the page's
 * own rendering in Chromium, the room connection, decoding the published tracks) and the rest grows
 * with width × height × framerate (the frame readback from the page, the frame transport, x264).
 * Audio-only requests use their own base (`audio_*_cpu_cost`) where the original has one, else their
 * type's base × AUDIO_ONLY_SDK_SHARE; a passthrough track egress encodes nothing and reserves
 * `track_cpu_cost` as it is. The original reserves its per-type constant whatever the encoding; a
 * user-set key is read as this model's 720p30 figure, so a request at the default preset reserves
 * exactly what the original would.
 *
 * `npm run bench:costs` measures every figure below on the machine it runs on and prints the model's
 * reservation beside it (and the `fixed` share that fits the measured presets best).
 */

/** Pixels per second of the reference encoding, 1280×720 at 30 fps. */
export const REFERENCE_PIXEL_RATE = DEFAULT_WIDTH * DEFAULT_HEIGHT * DEFAULT_FRAMERATE;

/**
 * A ratio to the reference above this is reserved as this: 3840×2160 at 60 fps. Beyond it the figure
 * would say nothing measured (and a malformed framerate of 2^32 must not overflow into Infinity).
 */
export const MAX_PIXEL_RATE_RATIO = (3840 * 2160 * 60) / REFERENCE_PIXEL_RATE;

/**
 * Fixed share of a Chromium-based egress (web, room composite, template) at 720p30. From bench:web on a
 * quiet 2-core machine: 720p30 used 82.2 CPU-s per recorded minute (1.37 cores) — the browser about
 * 1.0 core, gst-launch 0.45, the transport 0.2 —, of which the page's own rendering (the render floor)
 * is about a third; the capture readback, transport and x264 grow with pixels. 1080p30 used 112
 * CPU-s/min but was not real time on 2 cores (a floor, not its demand: the model says 2.25 × pixels →
 * 1.9 × the 720p30 cost). `npm run bench:costs` on a quiet machine cannot fit it on 2 cores either
 * (1080p30 took 1.93 cores, all there was, against 1.81 at 720p30), so this stays an estimate.
 */
export const CHROME_FIXED_SHARE = 0.3;

/**
 * Fixed share of an SDK-source egress (participant, track composite, v2 media) at 720p30. From
 * bench:costs on a quiet 2-core machine: a participant (640x360 VP8 + Opus publisher → 720p30 H264)
 * used 26.8 CPU-s per recorded minute, 9.3 of it in the handler (the room connection, VP8 and Opus
 * decoding, the transport: what does not grow with the output's pixels) and 17.5 in gst-launch (x264
 * and AAC), so 0.35.
 */
export const SDK_FIXED_SHARE = 0.35;

/**
 * Audio-only SDK-source egress (a track composite without a video track, v2 media without video) as a
 * share of its type's 720p30 cost: bench:costs on a quiet machine measured an Opus track at 0.13
 * cores against 0.45 for a 720p30 participant, 0.29.
 */
export const AUDIO_ONLY_SDK_SHARE = 0.3;

/** What a request asks to encode, as far as its CPU cost is concerned. */
export type EncodingShape =
  | { readonly kind: 'video'; readonly width: number; readonly height: number; readonly framerate: number }
  | { readonly kind: 'audio' }
  | { readonly kind: 'passthrough' };

export type OptionsOneof =
  | { case: 'preset'; value: EncodingOptionsPreset }
  | { case: 'advanced'; value: EncodingOptions }
  | { case: undefined; value?: undefined };

/**
 * The video encoding asked for by a request's options, with the same defaults the request validation
 * applies (an unknown preset or a zero advanced field keeps 1280×720 at 30 fps).
 */
export function shapeOfOptions(o: OptionsOneof): EncodingShape {
  if (o.case === 'preset') {
    if (o.value === EncodingOptionsPreset.PASSTHROUGH) return { kind: 'passthrough' };
    const p = PRESETS[o.value];
    return { kind: 'video', width: p?.width ?? DEFAULT_WIDTH, height: p?.height ?? DEFAULT_HEIGHT, framerate: p?.framerate ?? DEFAULT_FRAMERATE };
  }
  if (o.case === 'advanced') {
    const a = o.value;
    return { kind: 'video', width: a.width > 0 ? a.width : DEFAULT_WIDTH, height: a.height > 0 ? a.height : DEFAULT_HEIGHT, framerate: a.framerate > 0 ? a.framerate : DEFAULT_FRAMERATE };
  }
  return { kind: 'video', width: DEFAULT_WIDTH, height: DEFAULT_HEIGHT, framerate: DEFAULT_FRAMERATE };
}

/** width × height × framerate relative to 720p30, capped at MAX_PIXEL_RATE_RATIO. */
export function pixelRateRatio(shape: { width: number; height: number; framerate: number }): number {
  const r = (shape.width * shape.height * shape.framerate) / REFERENCE_PIXEL_RATE;
  return Number.isFinite(r) && r > 0 ? Math.min(r, MAX_PIXEL_RATE_RATIO) : 1;
}

/**
 * The multiplier of a 720p30 base cost for a video encoding, given the type's fixed share:
 * fixed + (1 − fixed) × ratio, written so that 720p30 gives exactly 1 (a reservation equal to the
 * configured cost to the last bit, as the original's).
 */
export function videoScale(shape: { width: number; height: number; framerate: number }, fixedShare: number): number {
  return 1 + (1 - fixedShare) * (pixelRateRatio(shape) - 1);
}
