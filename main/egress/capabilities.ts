import { errUnsupported } from '../contracts/errors.js';
import type { PipelinePlan } from '../contracts/pipeline.js';

/**
 * What this build can run, checked after validation and before anything is accepted: a valid
 * request for an output that does not exist yet is refused up front with a clear error, never
 * accepted, half recorded and reported COMPLETE.
 */
export function assertRunnable(plan: PipelinePlan): void {
  // RTMP and SRT run; WebSocket streams do not exist yet.
  if (plan.stream && plan.stream.protocol === 'websocket') {
    throw errUnsupported('websocket stream output');
  }
  if (!plan.file && !plan.segments && !plan.images?.length && !plan.stream) throw errUnsupported('a request without an output');
}
