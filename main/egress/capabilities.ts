import { errUnsupported } from '../contracts/errors.js';
import type { PipelinePlan } from '../contracts/pipeline.js';

/**
 * What this build can run, checked after validation and before anything is accepted: a valid
 * request for an output that does not exist yet is refused up front with a clear error, never
 * accepted, half recorded and reported COMPLETE.
 */
export function assertRunnable(plan: PipelinePlan): void {
  const page = plan.source.kind === 'web' || plan.source.kind === 'template';
  // Track egress, pages and the audio-only room template (its mix) send raw PCM over a WebSocket;
  // no other source does yet.
  const trackWebsocket = plan.stream?.protocol === 'websocket' && (plan.source.kind === 'track' || plan.source.kind === 'room_audio');
  if (plan.stream?.protocol === 'websocket' && !trackWebsocket && !page) throw errUnsupported(`websocket stream output of ${plan.source.kind.replace('_', ' ')} egress`);
  if (page) {
    // Validation made a WebSocket request audio-only; images (video) next to it would get no picture.
    if (plan.stream?.protocol === 'websocket' && plan.images?.length) throw errUnsupported('image output next to a websocket stream output');
    // Pages (web, room templates) run every other output, several at once from one encode.
    if (!plan.file && !plan.segments && !plan.images?.length && !plan.stream) throw errUnsupported('a request without an output');
    return;
  }
  // Sources that join the room without a page write files (and track egress its WebSocket) so far.
  if (plan.stream && !trackWebsocket) throw errUnsupported(`${plan.stream.protocol.toUpperCase()} stream output of ${plan.source.kind.replace('_', ' ')} egress`);
  if (plan.segments) throw errUnsupported(`segmented (HLS) output of ${plan.source.kind.replace('_', ' ')} egress`);
  if (plan.images && plan.images.length > 0) throw errUnsupported(`image output of ${plan.source.kind.replace('_', ' ')} egress`);
  if (!plan.file && !trackWebsocket) throw errUnsupported('a request without a file output');
}
