import type { RequestType } from '../contracts/pipeline.js';
import type { ServiceConfig } from '../config/load.js';
import type { EgressRequest } from './plan.js';
import { AUDIO_ONLY_SDK_SHARE, CHROME_FIXED_SHARE, SDK_FIXED_SHARE, shapeOfOptions, videoScale, type EncodingShape, type OptionsOneof } from './cost-model.js';

/**
 * Request type and admission cost.
 */

/** Metrics/latency request type of a request; null for an empty oneof. */
export function requestTypeOf(request: EgressRequest): RequestType | null {
  switch (request.case) {
    case 'roomComposite':
      return 'room_composite';
    case 'web':
      return 'web';
    case 'participant':
      return 'participant';
    case 'trackComposite':
      return 'track_composite';
    case 'track':
      return 'track';
    case 'egress':
    case 'replay':
      switch (request.value.source.case) {
        case 'template':
          return 'template';
        case 'web':
          return 'web';
        case 'media':
          return 'media';
        default:
          return null;
      }
    default:
      return null;
  }
}

/** Audio-only room composite / template without layout and custom base URL runs without Chrome. */
export function isSdkRoomComposite(t: { audioOnly: boolean; layout: string; customBaseUrl: string }): boolean {
  return t.audioOnly && t.layout === '' && t.customBaseUrl === '';
}

/** True when the request runs in Chrome (web source): counts against max_pulse_clients. */
export function usesChrome(request: EgressRequest): boolean {
  switch (request.case) {
    case 'web':
      return true;
    case 'roomComposite':
      return !isSdkRoomComposite(request.value);
    case 'egress':
    case 'replay':
      if (request.value.source.case === 'web') return true;
      if (request.value.source.case === 'template') return !isSdkRoomComposite(request.value.source.value);
      return false;
    default:
      return false;
  }
}

export interface RequestCost {
  /** Cores reserved at admission. */
  readonly cpu: number;
  /** GB reserved at admission (0 when memory checks are off). */
  readonly memoryGb: number;
}

/**
 * Admission cost of a request: its type's `cpu_cost.*` (the 720p30 figure) scaled by the encoding it
 * asks for (see cost-model.ts). A non-zero `estimatedCpu` (rpc StartEgressRequest.estimated_cpu)
 * overrides the computed CPU cost, as in the original.
 */
export function costOf(request: EgressRequest, config: ServiceConfig, estimatedCpu = 0): RequestCost {
  const c = config.cpu_cost;
  let cpu = 0;
  let memoryGb = c.memory_cost;
  const composite = (t: { audioOnly: boolean; layout: string; customBaseUrl: string }, options: OptionsOneof): void => {
    if (!t.audioOnly) cpu = scaled(c.room_composite_cpu_cost, shapeOfOptions(options), CHROME_FIXED_SHARE);
    else if (isSdkRoomComposite(t)) {
      cpu = c.sdk_audio_room_composite_cpu_cost;
      memoryGb = c.sdk_audio_room_composite_memory_cost;
    } else cpu = c.audio_room_composite_cpu_cost;
  };
  const web = (audioOnly: boolean, options: OptionsOneof): void => {
    cpu = audioOnly ? c.audio_web_cpu_cost : scaled(c.web_cpu_cost, shapeOfOptions(options), CHROME_FIXED_SHARE);
  };
  switch (request.case) {
    case 'roomComposite':
      composite(request.value, request.value.options);
      break;
    case 'web':
      web(request.value.audioOnly, request.value.options);
      break;
    case 'participant':
      cpu = scaled(c.participant_cpu_cost, shapeOfOptions(request.value.options), SDK_FIXED_SHARE);
      break;
    case 'trackComposite':
      cpu =
        request.value.videoTrackId === ''
          ? c.track_composite_cpu_cost * AUDIO_ONLY_SDK_SHARE
          : scaled(c.track_composite_cpu_cost, shapeOfOptions(request.value.options), SDK_FIXED_SHARE);
      break;
    case 'track':
      cpu = c.track_cpu_cost;
      break;
    case 'egress':
    case 'replay': {
      const v = request.value;
      const shape = shapeOfOptions(v.encoding);
      switch (v.source.case) {
        case 'template':
          composite(v.source.value, v.encoding);
          break;
        case 'web':
          web(v.source.value.audioOnly, v.encoding);
          break;
        case 'media':
          if (shape.kind === 'passthrough') cpu = c.track_cpu_cost;
          else if (v.source.value.video.case === undefined) cpu = c.participant_cpu_cost * AUDIO_ONLY_SDK_SHARE;
          else cpu = scaled(c.participant_cpu_cost, shape, SDK_FIXED_SHARE);
          break;
        default:
          break;
      }
      break;
    }
    default:
      break;
  }
  if (estimatedCpu > 0) cpu = estimatedCpu;
  return { cpu, memoryGb };
}

/** A 720p30 base cost at the encoding asked for; a type that cannot pass through (validation refuses it) costs its base. */
function scaled(base: number, shape: EncodingShape, fixedShare: number): number {
  return shape.kind === 'video' ? base * videoScale(shape, fixedShare) : base;
}
