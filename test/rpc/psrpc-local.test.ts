/**
 * psrpc TS client ↔ TS server over a real redis-server (no livekit-server): selection,
 * errors, timeouts, expiry, queue lock, multi-response, publish guard, Redis restart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Empty } from '@bufbuild/protobuf';
import { EgressInfo, StopEgressRequest } from '@livekit/protocol';
import {
  ClaimResponse,
  defineMethod,
  encodeEnvelope,
  nowNs,
  PsrpcClient,
  PsrpcError,
  PsrpcServer,
  RedisBus,
  Request,
  requestChannel,
} from '../../main/rpc/psrpc/index.js';
import { ListActiveEgressRequest, ListActiveEgressResponse } from '../../main/rpc/messages.js';
import { EgressHandler, EgressInternal } from '../../main/rpc/services.js';
import { EgressError } from '../../main/contracts/errors.js';
import { sleep, startRedis } from '../harness/redis.js';
import type { RedisInstance } from '../harness/redis.js';
import { setLogLevel } from '../../main/log.js';

setLogLevel('error');

const Echo = defineMethod('TestSvc', 'Echo', StopEgressRequest, EgressInfo, { affinityEnabled: true, requireClaim: true, queue: false });
const Queue = defineMethod('TestSvc', 'Queue', StopEgressRequest, Empty, { requireClaim: false, queue: true });

describe('psrpc TS ↔ TS over redis', () => {
  let redis: RedisInstance;
  const buses: RedisBus[] = [];
  const bus = async (): Promise<RedisBus> => {
    const b = await RedisBus.connect({ redis: redis.url });
    buses.push(b);
    return b;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const b of buses) await b.close();
    await redis?.close();
  });

  test('unary with affinity: the higher claim wins after the short-circuit; errors keep their code', async () => {
    const s1 = new PsrpcServer(await bus());
    const s2 = new PsrpcServer(await bus());
    const client = new PsrpcClient(await bus());
    const r1 = await s1.register(Echo, 't1', (req) => new EgressInfo({ egressId: `${req.egressId}@s1` }), { affinity: () => 0.3 });
    const r2 = await s2.register(Echo, 't1', (req) => new EgressInfo({ egressId: `${req.egressId}@s2` }), { affinity: () => 0.7 });
    for (let i = 0; i < 3; i++) {
      const res = await client.call(Echo, 't1', new StopEgressRequest({ egressId: `e${i}` }));
      assert.equal(res.egressId, `e${i}@s2`);
    }
    await r2.close();
    assert.equal((await client.call(Echo, 't1', new StopEgressRequest({ egressId: 'x' }))).egressId, 'x@s1');
    await r1.close();
    await s1.register(Echo, 't1', () => {
      throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'bad input');
    });
    await assert.rejects(client.call(Echo, 't1', new StopEgressRequest()), (e: unknown) => e instanceof PsrpcError && e.code === 'invalid_argument' && e.message === 'bad input');
    await s1.close();
    await s2.close();
    await client.close();
  });

  test('no server: unavailable "no response from servers" after the selection window; slow server: deadline_exceeded', async () => {
    const client = new PsrpcClient(await bus(), { selectionTimeoutMs: 300 });
    const t0 = Date.now();
    await assert.rejects(client.call(Echo, 'nobody', new StopEgressRequest()), (e: unknown) => e instanceof PsrpcError && e.code === 'unavailable' && e.message === 'no response from servers');
    assert.ok(Date.now() - t0 < 1500);

    const s = new PsrpcServer(await bus());
    const aborted: boolean[] = [];
    await s.register(Echo, 'slow', async (_req, ctx) => {
      await sleep(1500);
      aborted.push(ctx.signal.aborted);
      return new EgressInfo();
    });
    await assert.rejects(client.call(Echo, 'slow', new StopEgressRequest(), { timeoutMs: 800 }), (e: unknown) => e instanceof PsrpcError && e.code === 'deadline_exceeded' && e.message === 'request timed out');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(client.call(Echo, 'slow', new StopEgressRequest(), { signal: ac.signal }), (e: unknown) => e instanceof PsrpcError && e.code === 'canceled');
    await s.close();
    // The canceled call never sent a ClaimResponse (cancel at 100 ms < 200 ms short-circuit): not handled.
    assert.deepEqual(aborted, [true], 'handler signal aborts at expiry');
    await client.close();
  });

  test('expired requests are dropped without a claim', async () => {
    const b = await bus();
    const s = new PsrpcServer(b);
    let calls = 0;
    await s.register(Echo, 'exp', () => {
      calls++;
      return new EgressInfo();
    });
    const pub = new Redis(redis.url);
    const past = nowNs() - 1_000_000_000n;
    await pub.publish(
      requestChannel('TestSvc', 'Echo', 'exp'),
      Buffer.from(encodeEnvelope(Request, new Request({ requestId: 'REQ_old000000000', clientId: 'CLI_x', sentAt: past, expiry: past + 1n, rawRequest: new StopEgressRequest().toBinary() }))),
    );
    await sleep(300);
    pub.disconnect();
    assert.equal(calls, 0);
    assert.equal(s.stats.expired, 1);
    assert.equal(s.stats.claimed + s.stats.lostClaims, 0);
    await s.close();
  });

  test('queue methods: only one of several servers handles each request (SET NX lock)', async () => {
    let handled = 0;
    const servers = [new PsrpcServer(await bus()), new PsrpcServer(await bus()), new PsrpcServer(await bus())];
    for (const s of servers)
      await s.register(Queue, '', () => {
        handled++;
        return undefined;
      });
    const client = new PsrpcClient(await bus());
    for (let i = 0; i < 5; i++) await client.call(Queue, '', new StopEgressRequest({ egressId: String(i) }));
    await sleep(200);
    assert.equal(handled, 5);
    for (const s of servers) await s.close();
    await client.close();
  });

  test('multi-response: every server answers; claim-free', async () => {
    const servers = [new PsrpcServer(await bus()), new PsrpcServer(await bus())];
    for (const [i, s] of servers.entries()) await s.register(EgressInternal.ListActiveEgress, '', () => new ListActiveEgressResponse({ egressIds: [`EG_${i}`] }));
    const client = new PsrpcClient(await bus());
    const res = await client.callMulti(EgressInternal.ListActiveEgress, '', new ListActiveEgressRequest(), { timeoutMs: 500 });
    assert.deepEqual(res.map((r) => r.value?.egressIds[0]).sort(), ['EG_0', 'EG_1']);
    const early = await client.callMulti(EgressInternal.ListActiveEgress, '', new ListActiveEgressRequest(), { timeoutMs: 5000, maxResponses: 2 });
    assert.equal(early.length, 2);
    for (const s of servers) await s.close();
    await client.close();
  });

  test('the bus refuses to publish a message kind the channel does not carry', async () => {
    const b = await bus();
    await assert.rejects(b.publish(requestChannel('EgressInternal', 'StartEgress', ''), 'RCLAIM', new ClaimResponse()), /refusing/);
    await assert.rejects(b.publish('EgressInternal|StartEgress|REQ', 'REQ', new ClaimResponse() as never), /refusing/);
    await assert.rejects(b.subscribe('EgressInternal|StartEgress|REQ', 'RES', () => undefined), /does not carry/);
  });

  test('server and client keep working across a Redis restart (resubscribe)', async () => {
    const s = new PsrpcServer(await bus());
    await s.register(EgressHandler.StopEgress, 'EG_restart', (req) => new EgressInfo({ egressId: req.egressId }));
    const client = new PsrpcClient(await bus());
    assert.equal((await client.call(EgressHandler.StopEgress, 'EG_restart', new StopEgressRequest({ egressId: 'EG_restart' }))).egressId, 'EG_restart');
    await redis.restart({ downMs: 300, hard: true });
    const deadline = Date.now() + 15_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      try {
        ok = (await client.call(EgressHandler.StopEgress, 'EG_restart', new StopEgressRequest({ egressId: 'EG_restart' }), { timeoutMs: 1000 })).egressId === 'EG_restart';
      } catch {
        await sleep(200);
      }
    }
    assert.ok(ok, 'call after restart');
    await s.close();
    await client.close();
  });
});
