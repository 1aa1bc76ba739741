import type { StartEgressRequest } from '../rpc/messages.js';
import type { EgressRequest, StartEgressEnvelope } from '../request/index.js';

/** rpc.StartEgressRequest → the envelope buildPipelinePlan validates. */
export function envelopeOf(req: StartEgressRequest): StartEgressEnvelope {
  return {
    egressId: req.egressId,
    // Same oneof cases and message classes as EgressInfo.request.
    request: req.request as EgressRequest,
    roomName: req.roomName,
    roomId: req.roomId,
    retryCount: req.retryCount,
    token: req.token,
    wsUrl: req.wsUrl,
  };
}
