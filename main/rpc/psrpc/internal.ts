/**
 * psrpc's internal wire messages (package `internal`, proto3), with the field numbers of
 * psrpc v0.7.2 `internal/internal.proto`, built on @bufbuild/protobuf 1.x, plus the outer
 * `internal.Msg` envelope that is wire-compatible with `google.protobuf.Any` (fields 1–2).
 */
import { Any, Message, proto3, protoInt64, ScalarType } from '@bufbuild/protobuf';
import type { MessageType } from '@bufbuild/protobuf';

/** Prefix Go uses for type URLs (`anypb`). */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** `internal.Msg`: { 1 type_url, 2 value, 3 channel (NATS only; empty on Redis) }. */
export interface Msg extends Message<Msg> {
  typeUrl: string;
  value: Uint8Array;
  channel: string;
}
export const Msg: MessageType<Msg> = proto3.makeMessageType<Msg>('internal.Msg', () => [
  { no: 1, name: 'type_url', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'value', kind: 'scalar', T: ScalarType.BYTES },
  { no: 3, name: 'channel', kind: 'scalar', T: ScalarType.STRING },
]);

export interface Request extends Message<Request> {
  requestId: string;
  clientId: string;
  /** Unix ns. */
  sentAt: bigint;
  /** Unix ns deadline. */
  expiry: bigint;
  multi: boolean;
  /** Legacy, unused by psrpc v0.7.x. */
  request?: Any;
  metadata: { [key: string]: string };
  /** Binary protobuf of the RPC request message. */
  rawRequest: Uint8Array;
}
export const Request: MessageType<Request> = proto3.makeMessageType<Request>('internal.Request', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'client_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'sent_at', kind: 'scalar', T: ScalarType.INT64 },
  { no: 4, name: 'expiry', kind: 'scalar', T: ScalarType.INT64 },
  { no: 5, name: 'multi', kind: 'scalar', T: ScalarType.BOOL },
  { no: 6, name: 'request', kind: 'message', T: Any },
  { no: 7, name: 'metadata', kind: 'map', K: ScalarType.STRING, V: { kind: 'scalar', T: ScalarType.STRING } },
  { no: 8, name: 'raw_request', kind: 'scalar', T: ScalarType.BYTES },
]);

export interface Response extends Message<Response> {
  requestId: string;
  serverId: string;
  sentAt: bigint;
  /** Legacy, unused by psrpc v0.7.x. */
  response?: Any;
  /** Non-empty means failure. */
  error: string;
  /** psrpc error code string; empty is read as `unknown`. */
  code: string;
  rawResponse: Uint8Array;
  errorDetails: Any[];
}
export const Response: MessageType<Response> = proto3.makeMessageType<Response>('internal.Response', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'sent_at', kind: 'scalar', T: ScalarType.INT64 },
  { no: 4, name: 'response', kind: 'message', T: Any },
  { no: 5, name: 'error', kind: 'scalar', T: ScalarType.STRING },
  { no: 6, name: 'code', kind: 'scalar', T: ScalarType.STRING },
  { no: 7, name: 'raw_response', kind: 'scalar', T: ScalarType.BYTES },
  { no: 8, name: 'error_details', kind: 'message', T: Any, repeated: true },
]);

export interface ClaimRequest extends Message<ClaimRequest> {
  requestId: string;
  serverId: string;
  /** float32 on the wire (fixed32). */
  affinity: number;
}
export const ClaimRequest: MessageType<ClaimRequest> = proto3.makeMessageType<ClaimRequest>('internal.ClaimRequest', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'affinity', kind: 'scalar', T: ScalarType.FLOAT },
]);

export interface ClaimResponse extends Message<ClaimResponse> {
  requestId: string;
  serverId: string;
}
export const ClaimResponse: MessageType<ClaimResponse> = proto3.makeMessageType<ClaimResponse>('internal.ClaimResponse', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
]);

export interface StreamOpen extends Message<StreamOpen> {
  nodeId: string;
  metadata: { [key: string]: string };
}
export const StreamOpen: MessageType<StreamOpen> = proto3.makeMessageType<StreamOpen>('internal.StreamOpen', () => [
  { no: 1, name: 'node_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 7, name: 'metadata', kind: 'map', K: ScalarType.STRING, V: { kind: 'scalar', T: ScalarType.STRING } },
]);

export interface StreamMessage extends Message<StreamMessage> {
  message?: Any;
  rawMessage: Uint8Array;
}
export const StreamMessage: MessageType<StreamMessage> = proto3.makeMessageType<StreamMessage>('internal.StreamMessage', () => [
  { no: 1, name: 'message', kind: 'message', T: Any },
  { no: 2, name: 'raw_message', kind: 'scalar', T: ScalarType.BYTES },
]);

export type StreamAck = Message<StreamAck>;
export const StreamAck: MessageType<StreamAck> = proto3.makeMessageType<StreamAck>('internal.StreamAck', () => []);

export interface StreamClose extends Message<StreamClose> {
  error: string;
  code: string;
}
export const StreamClose: MessageType<StreamClose> = proto3.makeMessageType<StreamClose>('internal.StreamClose', () => [
  { no: 1, name: 'error', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'code', kind: 'scalar', T: ScalarType.STRING },
]);

/** Streams are not used by egress; the type exists so that envelopes can be recognised. */
export interface Stream extends Message<Stream> {
  streamId: string;
  requestId: string;
  sentAt: bigint;
  expiry: bigint;
  body:
    | { case: 'open'; value: StreamOpen }
    | { case: 'message'; value: StreamMessage }
    | { case: 'ack'; value: StreamAck }
    | { case: 'close'; value: StreamClose }
    | { case: undefined; value?: undefined };
}
export const Stream: MessageType<Stream> = proto3.makeMessageType<Stream>('internal.Stream', () => [
  { no: 1, name: 'stream_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'sent_at', kind: 'scalar', T: ScalarType.INT64 },
  { no: 4, name: 'expiry', kind: 'scalar', T: ScalarType.INT64 },
  { no: 6, name: 'open', kind: 'message', T: StreamOpen, oneof: 'body' },
  { no: 7, name: 'message', kind: 'message', T: StreamMessage, oneof: 'body' },
  { no: 8, name: 'ack', kind: 'message', T: StreamAck, oneof: 'body' },
  { no: 9, name: 'close', kind: 'message', T: StreamClose, oneof: 'body' },
]);

/** The four envelope kinds egress traffic uses, keyed by the channel suffix that carries them. */
export type EnvelopeKind = 'REQ' | 'RCLAIM' | 'CLAIM' | 'RES';

export interface EnvelopeTypes {
  REQ: Request;
  RCLAIM: ClaimResponse;
  CLAIM: ClaimRequest;
  RES: Response;
}

export const ENVELOPE_TYPES: {
  readonly REQ: MessageType<Request>;
  readonly RCLAIM: MessageType<ClaimResponse>;
  readonly CLAIM: MessageType<ClaimRequest>;
  readonly RES: MessageType<Response>;
} = {
  REQ: Request,
  RCLAIM: ClaimResponse,
  CLAIM: ClaimRequest,
  RES: Response,
};

export function typeUrlOf(type: MessageType): string {
  return TYPE_URL_PREFIX + type.typeName;
}

/** Wraps an inner message in the `internal.Msg` envelope (type_url + value; channel left empty). */
export function encodeEnvelope(type: MessageType, msg: { toBinary(): Uint8Array }): Uint8Array {
  return new Msg({ typeUrl: typeUrlOf(type), value: msg.toBinary() }).toBinary();
}

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

/**
 * Decodes an envelope and checks that it carries `expected`. Resolution, like Go's, uses the text
 * after the last `/` of the type URL. Throws EnvelopeError on bad protobuf or a wrong type.
 */
export function decodeEnvelope<T extends Message<T>>(expected: MessageType<T>, payload: Uint8Array): T {
  let env: Msg;
  try {
    env = Msg.fromBinary(payload, { readUnknownFields: false });
  } catch (err) {
    throw new EnvelopeError(`bad envelope: ${(err as Error).message}`);
  }
  const name = env.typeUrl.slice(env.typeUrl.lastIndexOf('/') + 1);
  if (name !== expected.typeName) {
    throw new EnvelopeError(`unexpected type ${JSON.stringify(env.typeUrl.slice(0, 200))}, want ${expected.typeName}`);
  }
  try {
    return expected.fromBinary(env.value, { readUnknownFields: false });
  } catch (err) {
    throw new EnvelopeError(`bad ${expected.typeName}: ${(err as Error).message}`);
  }
}

/** Current wall clock as Unix nanoseconds. */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export const ZERO_NS: bigint = protoInt64.zero;
