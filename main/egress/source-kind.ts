import type { PipelinePlan, SdkSourcePlan } from '../contracts/pipeline.js';

/** True for sources recorded from the room itself (no page): see sdk-egress.ts. */
export function isSdkSource(source: PipelinePlan['source']): source is SdkSourcePlan {
  return source.kind === 'participant' || source.kind === 'track_composite' || source.kind === 'track' || source.kind === 'room_audio' || source.kind === 'media';
}
