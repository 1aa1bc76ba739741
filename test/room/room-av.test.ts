/**
 * Room composite A/V over two minutes, through the real client path (livekit-server-sdk →
 * livekit-server → Redis → our worker → the default template in Chromium): two VP8 publishers beep
 * and flash together once a second; per publisher, the flash in its grid cell against its beep.
 * Once on a quiet machine, once with a CPU hog (a busy loop on one core) running for the whole
 * recording. Publishers run in their own processes at raised priority, as remote clients would.
 *
 * The figures are always printed. Bounds: ROOM_AV_P80_MS (default 40) on |offset| p80 and
 * ROOM_AV_DRIFT_MS (default 10) on the drift (mean offset of the last 20 s minus the first 20 s).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { EgressStatus, EncodedFileOutput } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import { gridRects } from '../../templates/room/src/geometry.js';
import type { PublisherHandle } from '../support/publisher.js';
import { analyse, checkFile, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from './common.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';
const W = 1280;
const H = 720;
const RECORD_S = Number(process.env['ROOM_AV_SECONDS'] ?? 120);
const MAX_P80_MS = Number(process.env['ROOM_AV_P80_MS'] ?? 40);
const MAX_DRIFT_MS = Number(process.env['ROOM_AV_DRIFT_MS'] ?? 10);

describe(`room composite A/V over ${RECORD_S} s`, { skip }, () => {
  let env: RoomEnv;
  const pubs: PublisherHandle[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  for (const load of ['quiet', 'cpu-hog'] as const) {
    test(`grid of 2, ${load}: A/V |offset| p80 ≤ ${MAX_P80_MS} ms and drift ≤ ${MAX_DRIFT_MS} ms per publisher`, async () => {
      const room = `av-${load}`;
      await env.rooms.createRoom({ name: room });
      const two = await startPublishers(env, room, 2, { video: { codec: 'vp8' } });
      pubs.push(...two);
      let hog: ChildProcess | null = null;
      try {
        const info = await env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, `${room}.mp4`) }) });
        await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
        if (load === 'cpu-hog') hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
        await sleep(RECORD_S * 1000);
        await env.egress.stopEgress(info.egressId);
        hog?.kill('SIGKILL');
        hog = null;
        const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
        const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
        const report = await analyse(`A/V ${load}`, path, regionsOf(two, gridRects(2, W, H)));
        for (const p of report.publishers) {
          assert.ok(p.sync.pairs >= RECORD_S * 0.8, `${p.identity}: ${p.sync.pairs} flash/beep pairs in ${RECORD_S} s`);
          assert.ok(p.sync.p80 * 1000 <= MAX_P80_MS, `${p.identity}: A/V |offset| p80 ${(p.sync.p80 * 1000).toFixed(0)} ms > ${MAX_P80_MS} ms`);
          assert.ok(Math.abs(p.sync.drift) * 1000 <= MAX_DRIFT_MS, `${p.identity}: drift ${(p.sync.drift * 1000).toFixed(0)} ms > ${MAX_DRIFT_MS} ms`);
        }
      } finally {
        hog?.kill('SIGKILL');
        await Promise.all(two.map((p) => p.stop()));
      }
    });
  }
});
