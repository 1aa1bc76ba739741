/** Shared set-up of the worker e2e suites: Redis, livekit-server (with a webhook sink), the demo page. */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressClient, EgressStatus, EncodedFileOutput, type EgressInfo } from 'livekit-server-sdk';
import { EncodedFileOutput as ProtoFileOutput, WebEgressRequest } from '@livekit/protocol';
import { startLivekit, type LivekitInstance } from '../harness/livekit.js';
import { startRedis, type RedisInstance } from '../harness/redis.js';
import { StaticServer } from '../../main/capture/static-server.js';
import { newEgressId } from '../../main/egress/ids.js';
import { StartEgressRequest } from '../../main/rpc/messages.js';
import { TEMPLATES_DIR } from '../support/web-egress.js';
import { waitFor } from './worker-harness.js';

export interface Hook {
  readonly event: string;
  readonly egressId: string;
  readonly status: string;
}

export interface Env {
  redis: RedisInstance;
  lk: LivekitInstance;
  api: EgressClient;
  pageUrl: string;
  dir: string;
  hooks: Hook[];
  close(): Promise<void>;
}

export async function startEnv(): Promise<Env> {
  const hooks: Hook[] = [];
  const hookServer: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      try {
        const j = JSON.parse(body) as { event?: string; egressInfo?: { egressId?: string; status?: string } };
        if (j.egressInfo) hooks.push({ event: j.event ?? '', egressId: j.egressInfo.egressId ?? '', status: j.egressInfo.status ?? 'EGRESS_STARTING' });
      } catch {
        /* not JSON */
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
  const hookPort = (hookServer.address() as { port: number }).port;
  const redis = await startRedis();
  const lk = await startLivekit({ redis, webhookUrls: [`http://127.0.0.1:${hookPort}/`] });
  const pages = new StaticServer(TEMPLATES_DIR);
  const base = await pages.listen();
  const dir = mkdtempSync(join(tmpdir(), 'egress-serve-test-'));
  return {
    redis,
    lk,
    api: new EgressClient(lk.url, lk.apiKey, lk.apiSecret, { requestTimeout: 60 }),
    pageUrl: base + 'demo/',
    dir,
    hooks,
    close: async () => {
      await pages.close();
      await lk.stop();
      await redis.close();
      hookServer.closeAllConnections();
      await new Promise<void>((r) => hookServer.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function fileOut(path: string): EncodedFileOutput {
  return new EncodedFileOutput({ filepath: path });
}

export async function infoOf(api: EgressClient, id: string): Promise<EgressInfo | undefined> {
  return (await api.listEgress({ egressId: id }))[0];
}

export async function waitStatus(api: EgressClient, id: string, status: EgressStatus, timeoutMs = 30_000): Promise<EgressInfo> {
  return waitFor(
    `${id} ${EgressStatus[status]}`,
    async () => {
      const i = await infoOf(api, id);
      if (i && i.status === status) return i;
      // An egress that ended otherwise will not reach `status`: say how it ended, now.
      if (i && i.status >= EgressStatus.EGRESS_COMPLETE) throw new Error(`ended ${EgressStatus[i.status]} ${i.error}`);
      return undefined;
    },
    timeoutMs,
    250,
  );
}

/** An rpc.StartEgressRequest for a web egress, as livekit-server would send it. */
export function rpcWebStart(url: string, filepath: string, egressId = newEgressId(), audioOnly = false): StartEgressRequest {
  return new StartEgressRequest({
    egressId,
    request: { case: 'web', value: new WebEgressRequest({ url, audioOnly, fileOutputs: [new ProtoFileOutput({ filepath })] }) },
  });
}

/** Selection options livekit-server uses for StartEgress. */
export const LK_SELECTION = { maximumAffinity: 1, affinityTimeoutMs: 1000, shortCircuitTimeoutMs: 500 };
