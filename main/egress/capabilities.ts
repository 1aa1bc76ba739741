import { errUnsupported } from '../contracts/errors.js';
import type { PipelinePlan } from '../contracts/pipeline.js';

/**
 * What this build can run, checked after validation and before anything is accepted: a valid
 * request for an output that does not exist yet is refused up front with a clear error, never
 * accepted, half recorded and reported COMPLETE.
 */
export function assertRunnable(plan: PipelinePlan): void {
  // Track egress sends raw PCM over a WebSocket itself (reference §10.2).
  const trackWebsocket = plan.stream?.protocol === 'websocket' && plan.source.kind === 'track';
  if (plan.stream && !trackWebsocket) {
    throw errUnsupported(plan.stream.protocol === 'websocket' ? 'websocket stream output' : `${plan.stream.protocol.toUpperCase()} stream output`);
  }
  if (plan.segments) throw errUnsupported('segmented (HLS) output');
  if (plan.images && plan.images.length > 0) throw errUnsupported('image output');
  if (!plan.file && !trackWebsocket) throw errUnsupported('a request without a file output');
}
