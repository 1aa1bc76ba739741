/**
 * Interop against a REAL livekit-server v1.13.5 and a real redis-server: livekit-server-sdk's
 * EgressClient → livekit-server → psrpc over Redis → a fake egress worker built on main/rpc/psrpc.
 * Needs .cache/bin/livekit-server (bash scripts/install-livekit.sh); skipped without it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { EgressClient, EncodedFileOutput, EgressStatus } from 'livekit-server-sdk';
import type { EgressInfo } from 'livekit-server-sdk';
import { expectTwirpError, livekitBinary, startLivekit } from '../harness/livekit.js';
import type { LivekitInstance } from '../harness/livekit.js';
import { sleep, startRedis } from '../harness/redis.js';
import type { RedisInstance } from '../harness/redis.js';
import { FakeWorker } from './fake-worker.js';
import { hostileMessages } from '../support/hostile-messages.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  PsrpcClient,
  PsrpcError,
  RedisBus,
  Request,
  requestChannel,
  claimResponseChannel,
  responseChannel,
  claimRequestChannel,
} from '../../main/rpc/psrpc/index.js';
import { GetEgressRequest, ListActiveEgressRequest, StartEgressRequest } from '../../main/rpc/messages.js';
import { EgressInternal, IOInfo } from '../../main/rpc/services.js';
import { setLogLevel } from '../../main/log.js';

const binary = livekitBinary();
setLogLevel('error');

/** Reads StartEgress requests off Redis (read-only sniffer; never publishes). */
class StartSniffer {
  readonly seen: Array<{ requestId: string; egressId: string; at: number }> = [];
  private conn!: Redis;
  async start(url: string): Promise<this> {
    this.conn = new Redis(url);
    this.conn.on('error', () => undefined);
    this.conn.on('messageBuffer', (_ch: Buffer, payload: Buffer) => {
      try {
        const r = decodeEnvelope(Request, payload);
        this.seen.push({ requestId: r.requestId, egressId: StartEgressRequest.fromBinary(r.rawRequest).egressId, at: Date.now() });
      } catch {
        /* not ours */
      }
    });
    await this.conn.subscribe(requestChannel('EgressInternal', 'StartEgress', ''));
    return this;
  }
  forEgress(id: string): Array<{ requestId: string; egressId: string; at: number }> {
    return this.seen.filter((s) => s.egressId === id);
  }
  async stop(): Promise<void> {
    this.conn.disconnect();
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

function fileOut(): EncodedFileOutput {
  return new EncodedFileOutput({ filepath: 'out.mp4' });
}

async function statusOf(client: EgressClient, id: string): Promise<EgressStatus | undefined> {
  const list = await client.listEgress({ egressId: id });
  return list[0]?.status;
}

describe('psrpc interop with livekit-server v1.13.5', { skip: binary ? false : 'livekit-server not built: bash scripts/install-livekit.sh' }, () => {
  let redis: RedisInstance;
  let lk: LivekitInstance;
  let api: EgressClient;
  let sniffer: StartSniffer;

  before(async () => {
    redis = await startRedis();
    lk = await startLivekit({ redis });
    api = new EgressClient(lk.url, lk.apiKey, lk.apiSecret, { requestTimeout: 60 });
    sniffer = await new StartSniffer().start(redis.url);
  });

  after(async () => {
    await sniffer?.stop();
    const alive = lk?.running ?? false;
    const panicked = /panic:|goroutine \d+ \[running\]/.test(lk?.logs() ?? '');
    await lk?.stop();
    await redis?.close();
    assert.ok(alive, 'livekit-server must survive the whole suite');
    assert.ok(!panicked, 'livekit-server logged a panic');
  });

  test('StartEgress is claimed with affinity and answered STARTING; ACTIVE/COMPLETE via IOInfo.UpdateEgress are visible in listEgress; StopEgress routes by egress id', async () => {
    const w = await new FakeWorker({ redisUrl: redis.url, autoActivate: false }).start();
    try {
      const t0 = Date.now();
      const info = await api.startWebEgress('https://example.com', fileOut());
      const took = Date.now() - t0;
      assert.match(info.egressId, /^EG_[A-Za-z0-9]{12}$/);
      assert.equal(info.status, EgressStatus.EGRESS_STARTING);
      assert.equal(info.request.case, 'web');
      assert.ok(took < 3000, `StartEgress took ${took} ms`);
      assert.deepEqual(w.created, [info.egressId]);
      assert.equal(sniffer.forEgress(info.egressId).length, 1, 'exactly one StartEgress request (no retry)');
      // CreateEgress from the worker stored it; lk's store has it too.
      assert.equal(await statusOf(api, info.egressId), EgressStatus.EGRESS_STARTING);

      await w.setStatus(info.egressId, EgressStatus.EGRESS_ACTIVE);
      const active = await api.listEgress({ active: true });
      assert.ok(active.some((e) => e.egressId === info.egressId && e.status === EgressStatus.EGRESS_ACTIVE));

      const stopped = await api.stopEgress(info.egressId);
      assert.equal(stopped.egressId, info.egressId);
      assert.equal(stopped.status, EgressStatus.EGRESS_ENDING);

      await waitFor('COMPLETE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_COMPLETE ? true : undefined));
      const done = (await api.listEgress({ egressId: info.egressId }))[0] as EgressInfo;
      assert.ok(done.endedAt > 0n);
      assert.equal(done.details, 'End reason: StopEgress API');
      assert.ok(!(await api.listEgress({ active: true })).some((e) => e.egressId === info.egressId));
      assert.deepEqual(w.errors, []);

      // The worker unsubscribed its EgressHandler topics: lk answers from the store.
      await expectTwirpError(api.stopEgress(info.egressId), 'failed_precondition', 412, /cannot be stopped/);
    } finally {
      await w.stop();
    }
  });

  test('UpdateStream reaches the worker and its psrpc error comes back through livekit-server', async () => {
    const w = await new FakeWorker({ redisUrl: redis.url }).start();
    try {
      const info = await api.startWebEgress('https://example.com', fileOut());
      await waitFor('ACTIVE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_ACTIVE ? true : undefined));
      await expectTwirpError(api.updateStream(info.egressId, ['rtmp://127.0.0.1/x']), 'invalid_argument', 400, /non-streaming egress/);
      await api.stopEgress(info.egressId);
    } finally {
      await w.stop();
    }
  });

  test('a non-retryable worker error (invalid_argument) reaches the API caller without retries', async () => {
    const w = await new FakeWorker({
      redisUrl: redis.url,
      beforeCreate: async () => {
        throw new PsrpcError('invalid_argument', 'bad url');
      },
    }).start();
    try {
      const before = sniffer.seen.length;
      await expectTwirpError(api.startWebEgress('https://example.com', fileOut()), 'invalid_argument', 400, /bad url/);
      await sleep(3000);
      assert.equal(sniffer.seen.length - before, 1, 'lk must not retry a non-recoverable error');
      assert.equal(w.startRequests.length, 1);
    } finally {
      await w.stop();
    }
  });

  test('IOInfo as a client: GetEgress of an unknown id returns not_found from livekit-server', async () => {
    const bus = await RedisBus.connect({ redis: redis.url });
    const client = new PsrpcClient(bus);
    try {
      await assert.rejects(client.call(IOInfo.GetEgress, undefined, new GetEgressRequest({ egressId: 'EG_nope' }), { timeoutMs: 5000 }), (err: unknown) => {
        assert.ok(err instanceof PsrpcError);
        assert.equal(err.code, 'not_found');
        assert.equal(err.message, 'egress does not exist');
        return true;
      });
    } finally {
      await client.close();
      await bus.close();
    }
  });

  test('a StartEgress retried by livekit-server (new request id, same egress id) is created once', async () => {
    let first = true;
    const w = await new FakeWorker({
      redisUrl: redis.url,
      // Outlive lk's first attempt (10 s) so it retries with a new request id.
      beforeCreate: async () => {
        if (first) {
          first = false;
          await sleep(10_500);
        }
      },
    }).start();
    try {
      const info = await api.startWebEgress('https://example.com', fileOut());
      const reqs = sniffer.forEgress(info.egressId);
      assert.ok(reqs.length >= 2, `expected a retry, saw ${reqs.length} request(s)`);
      assert.equal(new Set(reqs.map((r) => r.requestId)).size, reqs.length, 'each retry has a new request id');
      assert.deepEqual(w.created, [info.egressId], 'one egress created for all attempts');
      assert.ok(w.startRequests.filter((r) => r.egressId === info.egressId).length >= 2);
      assert.equal((await api.listEgress({ egressId: info.egressId })).length, 1);
      await waitFor('ACTIVE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_ACTIVE ? true : undefined));
      await api.stopEgress(info.egressId);
    } finally {
      await w.stop();
    }
  });

  test('two workers: affinity decides (1/(1+active) spreads; 1.0 beats 0.5); ListActiveEgress answers from both', async () => {
    const a = await new FakeWorker({ redisUrl: redis.url, name: 'a', affinity: (n) => 1 / (1 + n) }).start();
    const b = await new FakeWorker({ redisUrl: redis.url, name: 'b', affinity: (n) => 1 / (1 + n) }).start();
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) ids.push((await api.startWebEgress('https://example.com', fileOut())).egressId);
      assert.equal(a.created.length, 2, `a got ${a.created.length}, b got ${b.created.length}`);
      assert.equal(b.created.length, 2);

      const bus = await RedisBus.connect({ redis: redis.url });
      const client = new PsrpcClient(bus);
      try {
        const results = await client.callMulti(EgressInternal.ListActiveEgress, '', new ListActiveEgressRequest(), { timeoutMs: 1000 });
        assert.equal(results.length, 2);
        const all = results.flatMap((r) => r.value?.egressIds ?? []).sort();
        assert.deepEqual(all, [...ids].sort());
        assert.deepEqual(new Set(results.map((r) => r.serverId)), new Set([a.server.id, b.server.id]));
      } finally {
        await client.close();
        await bus.close();
      }
      for (const id of ids) await api.stopEgress(id);
    } finally {
      await a.stop();
      await b.stop();
    }

    const low = await new FakeWorker({ redisUrl: redis.url, name: 'low', affinity: 0.5 }).start();
    const high = await new FakeWorker({ redisUrl: redis.url, name: 'high', affinity: 1 }).start();
    const silent = await new FakeWorker({ redisUrl: redis.url, name: 'silent', affinity: -1 }).start();
    try {
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push((await api.startWebEgress('https://example.com', fileOut())).egressId);
      assert.deepEqual(high.created, got);
      assert.deepEqual(low.created, []);
      assert.deepEqual(silent.startRequests, []);
      assert.equal(silent.server.stats.claimed, 0);
      for (const id of got) await api.stopEgress(id);
    } finally {
      await low.stop();
      await high.stop();
      await silent.stop();
    }
  });

  test('1000+ malformed messages on the worker channels are dropped; the worker keeps serving', async () => {
    const w = await new FakeWorker({ redisUrl: redis.url }).start();
    const pub = new Redis(redis.url);
    pub.on('error', () => undefined);
    try {
      const info = await api.startWebEgress('https://example.com', fileOut());
      const ioClientId = w.io.id;
      // Only channels that livekit-server does not read (a wrong type there could crash it).
      const reqCh = requestChannel('EgressInternal', 'StartEgress', '');
      const channels = [
        reqCh,
        claimResponseChannel('EgressInternal', 'StartEgress', ''),
        requestChannel('EgressInternal', 'ListActiveEgress', ''),
        requestChannel('EgressHandler', 'StopEgress', info.egressId),
        claimResponseChannel('EgressHandler', 'StopEgress', info.egressId),
        responseChannel('IOInfo', ioClientId),
        claimRequestChannel('IOInfo', ioClientId),
      ];
      const junk: Buffer[] = [
        ...hostileMessages(w.server.id),
        Buffer.alloc(5 * 1024 * 1024, 0x0a), // larger than the 4 MiB limit
      ];
      const droppedBefore = w.bus.stats.dropped;
      let sent = 0;
      for (let round = 0; sent < 2100; round++) {
        const pipe = pub.pipeline();
        for (const ch of channels) {
          const j = junk[(round + sent) % junk.length] as Buffer;
          if (j.length > 1024 * 1024 && round % 20 !== 0) continue; // a few huge ones only
          pipe.publish(ch, j);
          sent++;
        }
        await pipe.exec();
      }
      // Bad raw_request on REQ: psrpc answers malformed_request (to a client nobody listens on).
      await pub.publish(
        reqCh,
        Buffer.from(
          encodeEnvelope(
            Request,
            new Request({ requestId: 'REQ_malformed000', clientId: 'CLI_nobody000000', sentAt: 1n, expiry: BigInt(Date.now() + 10_000) * 1_000_000n, rawRequest: new Uint8Array([0x0a, 0xff, 0xff]) }),
          ),
        ),
      );
      await waitFor('drops counted', () => (w.bus.stats.dropped - droppedBefore >= 1000 ? true : undefined), 15_000);
      assert.ok(!w.startRequests.some((r) => r.egressId === 'EG_expired000000'), 'expired request was handled');
      await waitFor('malformed_request answered', () => (w.server.stats.malformed >= 1 ? true : undefined), 5000);

      // Still serving: the active egress can be stopped and new ones start.
      await waitFor('ACTIVE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_ACTIVE ? true : undefined));
      assert.equal((await api.stopEgress(info.egressId)).status, EgressStatus.EGRESS_ENDING);
      const again = await api.startWebEgress('https://example.com', fileOut());
      assert.equal(again.status, EgressStatus.EGRESS_STARTING);
      await api.stopEgress(again.egressId).catch(() => undefined);
      assert.ok(lk.running, 'livekit-server must still run');
    } finally {
      pub.disconnect();
      await w.stop();
    }
  });

  test('with no worker, livekit-server returns unavailable "no response from servers" after its retries', async () => {
    const before = sniffer.seen.length;
    const t0 = Date.now();
    await expectTwirpError(api.startWebEgress('https://example.com', fileOut()), 'unavailable', 503, /no response from servers/);
    const took = Date.now() - t0;
    const attempts = sniffer.seen.slice(before);
    assert.equal(new Set(attempts.map((a) => a.egressId)).size, 1, 'all attempts carry one egress id');
    assert.equal(new Set(attempts.map((a) => a.requestId)).size, attempts.length, 'each attempt has a new request id');
    assert.equal(attempts.length, 9, `attempts: ${attempts.length} in ${took} ms`);
    assert.ok(took > 15_000 && took < 35_000, `took ${took} ms`);
  });

  test('Redis restart: the worker re-subscribes and serves StartEgress / IOInfo again', async () => {
    const w = await new FakeWorker({ redisUrl: redis.url }).start();
    try {
      await redis.restart({ downMs: 500 });
      await sniffer.stop();
      sniffer = await new StartSniffer().start(redis.url);
      // Wait until both livekit-server and the worker are subscribed again.
      const probe = new Redis(redis.url);
      probe.on('error', () => undefined);
      try {
        await waitFor(
          'resubscribe',
          async () => {
            const chans = (await probe.pubsub('CHANNELS', '*')) as string[];
            return chans.includes('EgressInternal|StartEgress|REQ') && chans.includes(`IOInfo|${w.io.id}|RES`) && chans.includes('IOInfo|UpdateEgress|REQ')
              ? true
              : undefined;
          },
          20_000,
        );
      } finally {
        probe.disconnect();
      }
      const info = await waitFor('StartEgress after restart', async () => api.startWebEgress('https://example.com', fileOut()), 30_000);
      assert.equal(info.status, EgressStatus.EGRESS_STARTING);
      await waitFor('ACTIVE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_ACTIVE ? true : undefined));
      await api.stopEgress(info.egressId);
      await waitFor('COMPLETE', async () => ((await statusOf(api, info.egressId)) === EgressStatus.EGRESS_COMPLETE ? true : undefined));
    } finally {
      await w.stop();
    }
  });
});
