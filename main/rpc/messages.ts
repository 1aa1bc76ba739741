/**
 * The `rpc.*` messages egress needs that npm @livekit/protocol does not ship, with the package,
 * type names and field numbers of livekit/protocol `protobufs/rpc/egress.proto` and `io.proto`
 * (commit 28e604c, the one livekit-server v1.13.5 pins). Nested `livekit.*` fields use the
 * @livekit/protocol classes, so everything shares one @bufbuild/protobuf 1.x runtime.
 */
import { Message, proto3, ScalarType } from '@bufbuild/protobuf';
import type { MessageType } from '@bufbuild/protobuf';
import {
  EgressInfo,
  ExportReplayRequest,
  StartEgressRequest as LivekitStartEgressRequest,
  ParticipantEgressRequest,
  RoomCompositeEgressRequest,
  TrackCompositeEgressRequest,
  TrackEgressRequest,
  WebEgressRequest,
} from '@livekit/protocol';

/** The `request` oneof of rpc.StartEgressRequest (and, with the same cases, of livekit.EgressInfo). */
export type StartEgressRequestCase =
  | { case: 'egress'; value: LivekitStartEgressRequest }
  | { case: 'replay'; value: ExportReplayRequest }
  | { case: 'roomComposite'; value: RoomCompositeEgressRequest }
  | { case: 'web'; value: WebEgressRequest }
  | { case: 'participant'; value: ParticipantEgressRequest }
  | { case: 'trackComposite'; value: TrackCompositeEgressRequest }
  | { case: 'track'; value: TrackEgressRequest }
  | { case: undefined; value?: undefined };

/** rpc.StartEgressRequest (EgressInternal.StartEgress request). */
export interface StartEgressRequest extends Message<StartEgressRequest> {
  /** 1 */
  egressId: string;
  /** oneof request: 16 egress, 17 replay, 5 room_composite, 11 web, 13 participant, 6 track_composite, 7 track */
  request: StartEgressRequestCase;
  /** 3 */
  roomId: string;
  /** 18 */
  roomName: string;
  /** 8 (secret; not set by livekit-server v1.13.5) */
  token: string;
  /** 9 (not set by livekit-server v1.13.5) */
  wsUrl: string;
  /** 10 (cloud) */
  cloudBackupEnabled: boolean;
  /** 14 (cloud) */
  estimatedCpu: number;
  /** 15 (cloud) */
  retryCount: number;
}
export const StartEgressRequest: MessageType<StartEgressRequest> = proto3.makeMessageType<StartEgressRequest>(
  'rpc.StartEgressRequest',
  () => [
    { no: 1, name: 'egress_id', kind: 'scalar', T: ScalarType.STRING },
    { no: 16, name: 'egress', kind: 'message', T: LivekitStartEgressRequest, oneof: 'request' },
    { no: 17, name: 'replay', kind: 'message', T: ExportReplayRequest, oneof: 'request' },
    { no: 5, name: 'room_composite', kind: 'message', T: RoomCompositeEgressRequest, oneof: 'request' },
    { no: 11, name: 'web', kind: 'message', T: WebEgressRequest, oneof: 'request' },
    { no: 13, name: 'participant', kind: 'message', T: ParticipantEgressRequest, oneof: 'request' },
    { no: 6, name: 'track_composite', kind: 'message', T: TrackCompositeEgressRequest, oneof: 'request' },
    { no: 7, name: 'track', kind: 'message', T: TrackEgressRequest, oneof: 'request' },
    { no: 3, name: 'room_id', kind: 'scalar', T: ScalarType.STRING },
    { no: 18, name: 'room_name', kind: 'scalar', T: ScalarType.STRING },
    { no: 8, name: 'token', kind: 'scalar', T: ScalarType.STRING },
    { no: 9, name: 'ws_url', kind: 'scalar', T: ScalarType.STRING },
    { no: 10, name: 'cloud_backup_enabled', kind: 'scalar', T: ScalarType.BOOL },
    { no: 14, name: 'estimated_cpu', kind: 'scalar', T: ScalarType.DOUBLE },
    { no: 15, name: 'retry_count', kind: 'scalar', T: ScalarType.INT32 },
  ],
);

/** rpc.ListActiveEgressRequest {} */
export type ListActiveEgressRequest = Message<ListActiveEgressRequest>;
export const ListActiveEgressRequest: MessageType<ListActiveEgressRequest> = proto3.makeMessageType<ListActiveEgressRequest>(
  'rpc.ListActiveEgressRequest',
  () => [],
);

/** rpc.ListActiveEgressResponse { repeated string egress_ids = 1; } */
export interface ListActiveEgressResponse extends Message<ListActiveEgressResponse> {
  egressIds: string[];
}
export const ListActiveEgressResponse: MessageType<ListActiveEgressResponse> = proto3.makeMessageType<ListActiveEgressResponse>(
  'rpc.ListActiveEgressResponse',
  () => [{ no: 1, name: 'egress_ids', kind: 'scalar', T: ScalarType.STRING, repeated: true }],
);

/** rpc.EgressReadyRequest { string egress_id = 1; } (ReplayExport, Cloud only) */
export interface EgressReadyRequest extends Message<EgressReadyRequest> {
  egressId: string;
}
export const EgressReadyRequest: MessageType<EgressReadyRequest> = proto3.makeMessageType<EgressReadyRequest>(
  'rpc.EgressReadyRequest',
  () => [{ no: 1, name: 'egress_id', kind: 'scalar', T: ScalarType.STRING }],
);

/** rpc.EgressReadyResponse { int64 start_at = 1; int64 duration_ms = 2; } (ReplayExport, Cloud only) */
export interface EgressReadyResponse extends Message<EgressReadyResponse> {
  startAt: bigint;
  durationMs: bigint;
}
export const EgressReadyResponse: MessageType<EgressReadyResponse> = proto3.makeMessageType<EgressReadyResponse>(
  'rpc.EgressReadyResponse',
  () => [
    { no: 1, name: 'start_at', kind: 'scalar', T: ScalarType.INT64 },
    { no: 2, name: 'duration_ms', kind: 'scalar', T: ScalarType.INT64 },
  ],
);

/** rpc.GetEgressRequest { string egress_id = 1; } (IOInfo.GetEgress) */
export interface GetEgressRequest extends Message<GetEgressRequest> {
  egressId: string;
}
export const GetEgressRequest: MessageType<GetEgressRequest> = proto3.makeMessageType<GetEgressRequest>(
  'rpc.GetEgressRequest',
  () => [{ no: 1, name: 'egress_id', kind: 'scalar', T: ScalarType.STRING }],
);

/** rpc.UpdateMetricsRequest { livekit.EgressInfo info = 1; float avg_cpu_usage = 3; float max_cpu_usage = 4; } */
export interface UpdateMetricsRequest extends Message<UpdateMetricsRequest> {
  info?: EgressInfo;
  avgCpuUsage: number;
  maxCpuUsage: number;
}
export const UpdateMetricsRequest: MessageType<UpdateMetricsRequest> = proto3.makeMessageType<UpdateMetricsRequest>(
  'rpc.UpdateMetricsRequest',
  () => [
    { no: 1, name: 'info', kind: 'message', T: EgressInfo },
    { no: 3, name: 'avg_cpu_usage', kind: 'scalar', T: ScalarType.FLOAT },
    { no: 4, name: 'max_cpu_usage', kind: 'scalar', T: ScalarType.FLOAT },
  ],
);
