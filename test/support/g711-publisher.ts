/**
 * A publisher that sends its audio as G.711 (PCMU or PCMA), the way a SIP participant does — which
 * rtc-node cannot (it always publishes Opus). A headless Chromium runs
 * test/fixtures/pages/g711-publisher with livekit-client; the page offers only the asked codec for its
 * audio and beeps its tone for 100 ms at epoch + k·1000 ms, like the rtc-node publishers.
 *
 *   const p = await startG711Publisher({ wsUrl, apiKey, apiSecret, room, identity: 'sip1', codec: 'PCMU', toneHz: 523 }, rooms);
 *   p.trackSid; …; await p.stop();
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessToken, type RoomServiceClient } from 'livekit-server-sdk';
import { ChromiumHost } from '../../main/capture/chromium-host.js';
import { StaticServer } from '../../main/capture/static-server.js';
import { FIXTURE_PAGES_DIR, REPO_ROOT } from './web-egress.js';

export interface G711PublisherOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  codec: 'PCMU' | 'PCMA';
  toneHz: number;
  /** Beep grid origin on the Date.now() scale (default: now). */
  epochMs?: number;
}

export interface G711Publisher {
  readonly identity: string;
  readonly trackSid: string;
  /** The codec livekit-server registered for the track (e.g. `audio/PCMU`). */
  readonly mimeType: string;
  stop(): Promise<void>;
}

export async function startG711Publisher(opts: G711PublisherOptions, rooms: RoomServiceClient): Promise<G711Publisher> {
  const dir = await mkdtemp(join(tmpdir(), 'g711-pub-'));
  await copyFile(join(FIXTURE_PAGES_DIR, 'g711-publisher/index.html'), join(dir, 'index.html'));
  await copyFile(join(REPO_ROOT, 'node_modules/livekit-client/dist/livekit-client.esm.mjs'), join(dir, 'livekit-client.js'));
  const server = new StaticServer(dir);
  const base = await server.listen();
  const at = new AccessToken(opts.apiKey, opts.apiSecret, { identity: opts.identity, ttl: '1h' });
  at.addGrant({ roomJoin: true, room: opts.room, canPublish: true, canSubscribe: false });
  const q = new URLSearchParams({ url: opts.wsUrl, token: await at.toJwt(), codec: opts.codec, tone: String(opts.toneHz), epoch: String(opts.epochMs ?? Date.now()) });
  const host = new ChromiumHost({ width: 320, height: 240, framerate: 30, workDir: join(dir, 'browser'), egressId: `G711_${opts.identity}`, insecure: false, sandbox: false, extraFlags: {} });
  const stop = async (): Promise<void> => {
    await host.close();
    await server.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  try {
    await host.open(`${base}index.html?${q.toString()}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const me = (await rooms.listParticipants(opts.room)).find((p) => p.identity === opts.identity);
      const track = me?.tracks.find((t) => t.mimeType.startsWith('audio/'));
      if (track) return { identity: opts.identity, trackSid: track.sid, mimeType: track.mimeType, stop };
      if (Date.now() > deadline) throw new Error(`${opts.identity} did not publish its ${opts.codec} track within 30 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
