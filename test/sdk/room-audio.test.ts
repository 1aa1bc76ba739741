/**
 * Audio-only room composite without a template (SDK source: no page, the room's audio tracks mixed
 * by audio_mixing) through livekit-server-sdk → livekit-server → Redis → our worker: the agent on
 * the left and everyone else on the right (DUAL_CHANNEL_AGENT), a late joiner mixed in without
 * inflating the duration, and tracks alternating sides (DUAL_CHANNEL_ALTERNATE).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AudioMixing } from '@livekit/protocol';
import { EgressStatus, EncodedFileOutput, EncodedFileType } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import type { PublisherHandle as Publisher } from '../support/publisher.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { presence } from '../support/room-media.js';
import { analyse, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';

describe('audio-only room composite on the SDK source through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  async function record(room: string, mixing: AudioMixing, late: () => Promise<Publisher[]>) {
    const info = await env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, `${room}.ogg`), fileType: EncodedFileType.OGG }) }, { audioOnly: true, audioMixing: mixing });
    const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.sourceType, 1, 'EGRESS_SOURCE_TYPE_SDK');
    const activeAt = Date.now();
    await sleep(5000);
    const lateAt = Date.now();
    pubs.push(...(await late()));
    await sleep(10_000);
    const stopAt = Date.now();
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE);
    const f = done.fileResults[0];
    assert.ok(f && f.size > 0n);
    // A late track must not inflate the duration.
    const reported = Number(f.duration) / 1e9;
    assert.ok(reported <= (stopAt - activeAt) / 1000 + 3, `reported ${reported} s for ${(stopAt - activeAt) / 1000} s of wall clock`);
    const probe = await ffprobe(f.location);
    assert.equal(videoStream(probe), undefined);
    const a = audioStream(probe);
    assert.equal(a?.codec_name, 'opus');
    assert.equal(a?.channels, 2);
    assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
    return { path: f.location, lateS: (lateAt - Number(f.startedAt) / 1e6) / 1000 };
  }

  test('DUAL_CHANNEL_AGENT: the agent beeps on the left only, the others (one joining late) on the right only', async () => {
    const room = 'mix-agent';
    const agent = await startPublishers(env, room, 1, { video: false, kind: 'agent' });
    const std = await startPublishers(env, room, 1, { video: false }, 1);
    pubs.push(...agent, ...std);
    const { path, lateS } = await record(room, AudioMixing.DUAL_CHANNEL_AGENT, () => startPublishers(env, room, 1, { video: false }, 2));
    const all = [...agent, ...std, ...pubs.filter((p) => p.identity === 'p3')];
    const report = await analyse('mix-agent', path, regionsOf(all, []));
    for (const p of report.publishers) console.log(`# mix-agent ${p.identity} tone by second (p3 joined at ${lateS.toFixed(1)} s): ${p.toneSeconds.map(Number).join('')}`);
    const want: Record<string, string> = { p1: 'left', p2: 'right', p3: 'right' };
    for (const p of report.publishers) {
      assert.equal(p.channel, want[p.identity], `${p.identity} on ${p.channel} (L/R ${p.leftRightRatio.toFixed(2)})`);
      const from = p.identity === 'p3' ? Math.ceil(lateS) + 3 : 1;
      const pres = presence(report, p.identity, from, report.seconds - 1);
      assert.ok(pres.tone >= 0.95, `${p.identity} tone in ${(pres.tone * 100).toFixed(0)} % of ${pres.seconds} s`);
    }
    const p3 = report.publishers.find((p) => p.identity === 'p3');
    const before = p3?.toneSeconds.slice(0, Math.floor(lateS)) ?? [];
    assert.ok(before.length >= 3 && before.every((t) => !t), `p3 silent before joining (${before.map(Number).join('')})`);
  });

  test('DUAL_CHANNEL_ALTERNATE: tracks alternate left, right; DEFAULT_MIXING: everyone on both', async () => {
    const room = 'mix-alt';
    const two = await startPublishers(env, room, 2, { video: false });
    pubs.push(...two);
    const { path } = await record(room, AudioMixing.DUAL_CHANNEL_ALTERNATE, async () => []);
    const report = await analyse('mix-alt', path, regionsOf(two, []));
    const sides = report.publishers.map((p) => p.channel).sort();
    assert.deepEqual(sides, ['left', 'right']);
    const both = await record('mix-alt', AudioMixing.DEFAULT_MIXING, async () => []);
    const r2 = await analyse('mix-default', both.path, regionsOf(two, []));
    for (const p of r2.publishers) console.log(`# mix-default ${p.identity} tone by second: ${p.toneSeconds.map(Number).join('')}`);
    for (const p of r2.publishers) {
      assert.equal(p.channel, 'both', p.identity);
      assert.ok(presence(r2, p.identity, 1, r2.seconds - 1).tone >= 0.95, p.identity);
    }
  });
});
