import { ClaimRequest, ClaimResponse, encodeEnvelope, Msg, Request, Response } from '../../main/rpc/psrpc/index.js';
import { StartEgressRequest } from '../../main/rpc/messages.js';

/**
 * Payloads a psrpc worker must drop without crashing: not protobuf, wrong envelope types, corrupt
 * inner messages, stray responses and claims, and an expired request with a valid StartEgress inside
 * (`EG_expired000000`, which must never be handled). Tests add their own oversized payloads.
 */
export function hostileMessages(claimServerId: string): Buffer[] {
  const past = BigInt(Date.now() - 60_000) * 1_000_000n;
  return [
    Buffer.alloc(0),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from('{"not":"protobuf"}'),
    Buffer.from(new Msg({ typeUrl: 'type.googleapis.com/internal.Nope', value: new Uint8Array([1, 2, 3]) }).toBinary()),
    Buffer.from(new Msg({ typeUrl: 'type.googleapis.com/internal.Request', value: new Uint8Array([0x0a, 0xff]) }).toBinary()),
    Buffer.from(encodeEnvelope(Response, new Response({ requestId: 'REQ_x', error: 'x' }))),
    Buffer.from(encodeEnvelope(ClaimRequest, new ClaimRequest({ requestId: 'REQ_x', serverId: 'SRV_x', affinity: 1 }))),
    Buffer.from(encodeEnvelope(ClaimResponse, new ClaimResponse({ requestId: 'REQ_x', serverId: claimServerId }))),
    Buffer.from(
      encodeEnvelope(
        Request,
        new Request({
          requestId: 'REQ_expired00000',
          clientId: 'CLI_nobody000000',
          sentAt: past,
          expiry: past + 1n,
          rawRequest: new StartEgressRequest({ egressId: 'EG_expired000000' }).toBinary(),
        }),
      ),
    ),
  ];
}
