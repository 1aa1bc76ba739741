import { EncodingOptionsPreset } from '@livekit/protocol';
import type { RequestType } from '../contracts/pipeline.js';
import type { ServiceConfig } from '../config/load.js';
import type { EgressRequest } from './plan.js';

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
 * Admission cost of a request from `cpu_cost.*`. A non-zero `estimatedCpu` (rpc
 * StartEgressRequest.estimated_cpu) overrides the computed CPU cost.
 */
export function costOf(request: EgressRequest, config: ServiceConfig, estimatedCpu = 0): RequestCost {
  const c = config.cpu_cost;
  let cpu = 0;
  let memoryGb = c.memory_cost;
  const composite = (t: { audioOnly: boolean; layout: string; customBaseUrl: string }): void => {
    if (!t.audioOnly) cpu = c.room_composite_cpu_cost;
    else if (isSdkRoomComposite(t)) {
      cpu = c.sdk_audio_room_composite_cpu_cost;
      memoryGb = c.sdk_audio_room_composite_memory_cost;
    } else cpu = c.audio_room_composite_cpu_cost;
  };
  switch (request.case) {
    case 'roomComposite':
      composite(request.value);
      break;
    case 'web':
      cpu = request.value.audioOnly ? c.audio_web_cpu_cost : c.web_cpu_cost;
      break;
    case 'participant':
      cpu = c.participant_cpu_cost;
      break;
    case 'trackComposite':
      cpu = c.track_composite_cpu_cost;
      break;
    case 'track':
      cpu = c.track_cpu_cost;
      break;
    case 'egress':
    case 'replay': {
      const v = request.value;
      switch (v.source.case) {
        case 'template':
          composite(v.source.value);
          break;
        case 'web':
          cpu = v.source.value.audioOnly ? c.audio_web_cpu_cost : c.web_cpu_cost;
          break;
        case 'media':
          cpu =
            v.encoding.case === 'preset' && v.encoding.value === EncodingOptionsPreset.PASSTHROUGH
              ? c.track_cpu_cost
              : c.participant_cpu_cost;
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
