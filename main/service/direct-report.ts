import type { EgressInfo } from '@livekit/protocol';
import type { ServiceConfig } from '../config/index.js';
import { logger } from '../log.js';
import { PsrpcClient, RedisBus } from '../rpc/psrpc/index.js';
import { IoReporter } from './io.js';
import { redisOptionsOf } from './redis.js';

/**
 * A handler whose worker died reports its own end. Normally a handler never touches Redis: the worker
 * relays every update. Without a worker, the egress would stay ACTIVE on livekit-server for ever, so
 * the orphaned handler — which has finished and delivered its file by then — sends its final
 * EgressInfo to livekit-server itself (IOInfo.UpdateEgress over psrpc, as the worker would) and exits.
 */

const log = logger('handler');

/** Time allowed for the whole report (connect, select livekit-server, deliver). */
const DIRECT_REPORT_MS = 15_000;

export async function reportFinalDirectly(info: EgressInfo, config: ServiceConfig): Promise<boolean> {
  let bus: RedisBus | null = null;
  let client: PsrpcClient | null = null;
  const deadline = Date.now() + DIRECT_REPORT_MS;
  try {
    bus = await RedisBus.connect({ redis: redisOptionsOf(config), connectTimeoutMs: 5000 });
    client = new PsrpcClient(bus, { timeoutMs: config.io_update_timeout, selectionTimeoutMs: 2000 });
    await client.ready('IOInfo');
    const io = new IoReporter(client, { createTimeoutMs: config.io_create_timeout, updateTimeoutMs: config.io_update_timeout, workers: 1 });
    io.update(info);
    await io.drain(Math.max(0, deadline - Date.now()));
    const delivered = io.healthy;
    io.close();
    log.info(`final status reported directly (worker gone): ${delivered ? 'delivered' : 'not confirmed'} [egress:${info.egressId}]`);
    return delivered;
  } catch (err) {
    log.error(`could not report the final status without a worker: ${(err as Error).message} [egress:${info.egressId}]`);
    return false;
  } finally {
    await client?.close().catch(() => undefined);
    await bus?.close().catch(() => undefined);
  }
}
