import type { ServiceConfig } from '../config/index.js';
import type { PipelinePlan } from '../contracts/pipeline.js';
import { buildPipelinePlan, type StartEgressEnvelope } from '../request/index.js';
import { assertRunnable } from './capabilities.js';
import { createWebEgress, type CreateWebEgressOptions } from './create-web-egress.js';
import { isSdkSource } from './source-kind.js';
import type { EventEmitter } from 'node:events';
import type { EgressInfo } from '@livekit/protocol';
import type { EgressError } from '../contracts/errors.js';
import type { EndReason, WebEgressEvents } from './web-egress.js';

/** What the handler drives, whichever source records. */
export interface EgressController {
  readonly info: EgressInfo;
  readonly plan: PipelinePlan;
  readonly silentExit: boolean;
  run(): Promise<EgressInfo>;
  stop(reason?: EndReason): EgressInfo;
  kill(error: EgressError): void;
  /** UpdateStream: add / remove stream URLs while recording (throws where the egress has no stream to change). */
  updateStream(addUrls: readonly string[], removeUrls: readonly string[]): EgressInfo;
  pids(): number[];
  on: EventEmitter<WebEgressEvents>['on'];
}

/**
 * Validates a request and assembles the controller of its source: a page or the room itself. The
 * SDK source (and its native @livekit/rtc-node library) is loaded only by handlers that need it, so
 * page egresses start as fast as before.
 */
export async function createEgress(envelope: StartEgressEnvelope, config: ServiceConfig, opts: CreateWebEgressOptions = {}): Promise<{ plan: PipelinePlan; controller: EgressController }> {
  const now = opts.now ?? new Date();
  const plan = buildPipelinePlan(envelope, config, now);
  assertRunnable(plan);
  if (isSdkSource(plan.source)) {
    const { createSdkEgress } = await import('./sdk-egress.js');
    return { plan, controller: createSdkEgress(plan, envelope, config, { ...opts, now }) };
  }
  return createWebEgress(envelope, config, opts);
}
