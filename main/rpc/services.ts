/**
 * The egress-related psrpc methods with their routing, as protocol's generated
 * `rpc/egress.psrpc.go` and `rpc/io.psrpc.go` register them (commit 28e604c):
 * `RegisterMethod(name, affinityEnabled, multi, requireClaim, queue)`.
 *
 * Topics: EgressInternal.StartEgress = cluster_id ("" by default; livekit-server always calls ""),
 * ListActiveEgress = "", EgressHandler.* = egress_id, IOInfo.* = none.
 */
import { Empty } from '@bufbuild/protobuf';
import { EgressInfo, ListEgressRequest, ListEgressResponse, StopEgressRequest, UpdateStreamRequest } from '@livekit/protocol';
import { defineMethod } from './psrpc/types.js';
import {
  EgressReadyRequest,
  EgressReadyResponse,
  GetEgressRequest,
  ListActiveEgressRequest,
  ListActiveEgressResponse,
  StartEgressRequest,
  UpdateMetricsRequest,
} from './messages.js';

/** EgressInternal: served by egress workers, called by livekit-server. */
export const EgressInternal = {
  /** AFFINITY routing: (affinity true, multi false, claim true, queue false). */
  StartEgress: defineMethod('EgressInternal', 'StartEgress', StartEgressRequest, EgressInfo, {
    affinityEnabled: true,
    multi: false,
    requireClaim: true,
    queue: false,
  }),
  /** MULTI routing: every worker answers with its active egress ids. */
  ListActiveEgress: defineMethod('EgressInternal', 'ListActiveEgress', ListActiveEgressRequest, ListActiveEgressResponse, {
    affinityEnabled: false,
    multi: true,
    requireClaim: false,
    queue: false,
  }),
} as const;

/** EgressHandler: served per egress (topic = egress_id), called by livekit-server. QUEUE + claim. */
export const EgressHandler = {
  StopEgress: defineMethod('EgressHandler', 'StopEgress', StopEgressRequest, EgressInfo, {
    affinityEnabled: false,
    multi: false,
    requireClaim: true,
    queue: true,
  }),
  /** Deprecated in protocol but still called by livekit-server v1.13.5. */
  UpdateStream: defineMethod('EgressHandler', 'UpdateStream', UpdateStreamRequest, EgressInfo, {
    affinityEnabled: false,
    multi: false,
    requireClaim: true,
    queue: true,
  }),
} as const;

/** IOInfo: served by livekit-server (no topic), called by egress workers. QUEUE + claim. */
export const IOInfo = {
  CreateEgress: defineMethod('IOInfo', 'CreateEgress', EgressInfo, Empty, { requireClaim: true, queue: true }),
  UpdateEgress: defineMethod('IOInfo', 'UpdateEgress', EgressInfo, Empty, { requireClaim: true, queue: true }),
  GetEgress: defineMethod('IOInfo', 'GetEgress', GetEgressRequest, EgressInfo, { requireClaim: true, queue: true }),
  ListEgress: defineMethod('IOInfo', 'ListEgress', ListEgressRequest, ListEgressResponse, { requireClaim: true, queue: true }),
  UpdateMetrics: defineMethod('IOInfo', 'UpdateMetrics', UpdateMetricsRequest, Empty, { requireClaim: true, queue: true }),
} as const;

/** ReplayExport (Cloud only; not used by open-source livekit-server): QUEUE, no claim (single_server). */
export const ReplayExport = {
  EgressReady: defineMethod('ReplayExport', 'EgressReady', EgressReadyRequest, EgressReadyResponse, {
    requireClaim: false,
    queue: true,
  }),
} as const;
