import type { Message, MessageType } from '@bufbuild/protobuf';

/**
 * One psrpc method, as `sd.RegisterMethod(name, affinityEnabled, multi, requireClaim, queue)`
 * in protocol's generated `*.psrpc.go` describes it, plus its request/response message types.
 */
export interface MethodInfo<Req extends Message<Req>, Res extends Message<Res>> {
  /** Service name as in channel names, e.g. `EgressInternal`. */
  readonly service: string;
  /** Method name, e.g. `StartEgress`. */
  readonly method: string;
  readonly requestType: MessageType<Req>;
  readonly responseType: MessageType<Res>;
  /** Client selection waits for the best affinity (short-circuit) instead of taking the first claim. */
  readonly affinityEnabled: boolean;
  /** Multi-response method: no claim, every server answers. */
  readonly multi: boolean;
  /** Servers must claim and wait for the ClaimResponse before handling. */
  readonly requireClaim: boolean;
  /** Servers take the `SET NX` queue lock so only one process per Redis handles a request. */
  readonly queue: boolean;
}

/** Convenience constructor with the defaults protoc-gen-psrpc uses for a plain method (QUEUE + claim). */
export function defineMethod<Req extends Message<Req>, Res extends Message<Res>>(
  service: string,
  method: string,
  requestType: MessageType<Req>,
  responseType: MessageType<Res>,
  routing: Partial<Pick<MethodInfo<Req, Res>, 'affinityEnabled' | 'multi' | 'requireClaim' | 'queue'>> = {},
): MethodInfo<Req, Res> {
  const multi = routing.multi ?? false;
  return {
    service,
    method,
    requestType,
    responseType,
    affinityEnabled: routing.affinityEnabled ?? false,
    multi,
    requireClaim: routing.requireClaim ?? !multi,
    queue: routing.queue ?? (!multi && !(routing.affinityEnabled ?? false)),
  };
}
