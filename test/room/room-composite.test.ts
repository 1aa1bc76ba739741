/**
 * Room composite end to end, through the real client path: livekit-server-sdk → livekit-server
 * v1.13.5 → psrpc over Redis → our worker → a handler recording the room through the built-in
 * template in Chromium. Synthetic rtc-node publishers each show their own colour and tone, flashing
 * and beeping together once a second; the output is checked by ffprobe and by content (who is
 * visible where, who is audible, A/V offset per publisher).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  EgressStatus,
  EncodedFileOutput,
  EncodingOptions,
  FileOutput,
  Output,
  StartEgressRequest,
  TemplateSource,
  VideoCodec,
} from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import { gridRects, layoutRects } from '../../templates/room/src/geometry.js';
import type { PublisherHandle } from '../support/publisher.js';
import { presence } from '../support/room-media.js';
import { analyse, assertAvSync, assertPresent, checkFile, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from './common.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';
const W = 1280;
const H = 720;

describe('room composite (template) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: PublisherHandle[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  test('grid, 2 VP8 publishers: STARTING → ACTIVE; everyone leaves, the room closes after its departure timeout → COMPLETE with the silence tail; cells, tones and A/V', async () => {
    const room = 'grid-2';
    await env.rooms.createRoom({ name: room, departureTimeout: 4 });
    const two = await startPublishers(env, room, 2, { video: { codec: 'vp8' } });
    pubs.push(...two);
    const out = join(env.dir, 'grid-2.mp4');
    const info = await env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: out }) });
    assert.equal(info.status, EgressStatus.EGRESS_STARTING);
    assert.equal(info.roomName, room);
    const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.sourceType, 0, 'EGRESS_SOURCE_TYPE_WEB');
    await sleep(20_000);
    const leftAt = Date.now();
    await Promise.all(two.map((p) => p.disconnect()));
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
    assert.equal(done.details, 'End reason: Source closed');
    assert.equal(done.error, '');
    const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
    const f = done.fileResults[0];
    const endedMs = Number(f?.endedAt ?? 0n) / 1e6;
    assert.ok(endedMs - leftAt >= 3000, `the silence after everyone left (${endedMs - leftAt} ms) is in the recording`);

    const report = await analyse('grid-2', path, regionsOf(two, gridRects(2, W, H)));
    const publishedUntil = (leftAt - Number(f?.startedAt ?? 0n) / 1e6) / 1000;
    assertPresent(report, 1, Math.floor(publishedUntil) - 1);
    // After everyone left: no tone at all (the tail is silence, not a repeated buffer).
    for (const p of report.publishers) {
      const tail = p.toneSeconds.slice(Math.ceil(publishedUntil) + 1, report.seconds - 1);
      assert.ok(tail.length >= 2 && tail.every((t) => !t), `${p.identity} silent after leaving (${tail.map(Number).join('')})`);
    }
    assertAvSync(report);
  });

  test('grid, 4 H264 publishers (2 send Opus as RED, 2 plain Opus), StopEgress → ENDING → COMPLETE: each publisher in its own cell, every tone present', async () => {
    const room = 'grid-4';
    // 320x180 keeps four H264 encoders and four decoders in the browser inside 2 cores.
    const video = { codec: 'h264', width: 320, height: 180 } as const;
    const four = [...(await startPublishers(env, room, 2, { video })), ...(await startPublishers(env, room, 2, { video, red: false }, 2))];
    pubs.push(...four);
    const out = join(env.dir, 'grid-4.mp4');
    const info = await env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: out }) }, { layout: 'grid' });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(15_000);
    const stopped = await env.egress.stopEgress(info.egressId);
    assert.equal(stopped.status, EgressStatus.EGRESS_ENDING);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE);
    assert.equal(done.details, 'End reason: StopEgress API');
    const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
    const report = await analyse('grid-4', path, regionsOf(four, gridRects(4, W, H)));
    assertPresent(report, 1, report.seconds - 1);
    assertAvSync(report);
    await Promise.all(four.map((p) => p.stop()));
  });

  test('v2 template source, single-speaker, video only, H264_HIGH 1280x720: one publisher full frame, no audio stream', async () => {
    const room = 'single';
    // p1 speaks (beeps), p2 publishes video only: the stage is p1's.
    const two = [...(await startPublishers(env, room, 1, { video: { codec: 'vp8' } })), ...(await startPublishers(env, room, 1, { video: { codec: 'vp8' }, audio: false }, 1))];
    pubs.push(...two);
    const out = join(env.dir, 'single.mp4');
    const req = new StartEgressRequest({
      roomName: room,
      source: { case: 'template', value: new TemplateSource({ layout: 'single-speaker', videoOnly: true }) },
      encoding: { case: 'advanced', value: new EncodingOptions({ videoCodec: VideoCodec.H264_HIGH }) },
      outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: out }) } })],
    });
    const info = await env.egress.startEgress(req);
    assert.equal(info.request.case, 'egress');
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(10_000);
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE);
    const { path } = await checkFile(done, { width: W, height: H, profile: 'High', audio: false, video: true });
    const stage = layoutRects('single-speaker', 2, W, H, false).tiles[0];
    const report = await analyse('single-speaker', path, regionsOf(two, [stage, stage]));
    const [p1, p2] = report.publishers;
    assert.ok(p1 && p2);
    const secs = report.seconds - 2;
    assert.ok(p1.colourSeconds.slice(1, -1).filter(Boolean).length >= secs * 0.95, `p1 on stage ${p1.colourSeconds.map(Number).join('')}`);
    assert.equal(p2.colourSeconds.slice(1, -1).filter(Boolean).length, 0, 'p2 not shown in single-speaker');
    await Promise.all(two.map((p) => p.stop()));
  });
  test('speaker, 3 publishers, the active speaker rotating by mute: the speaker on stage, only the speaker audible', async () => {
    const room = 'speaker-3';
    const three = await startPublishers(env, room, 3, { video: { codec: 'vp8', width: 320, height: 180 } });
    pubs.push(...three);
    const [p1, p2, p3] = three;
    assert.ok(p1 && p2 && p3);
    await p2.muteAudio(true);
    await p3.muteAudio(true);
    const info = await env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'speaker-3.mp4') }) }, { layout: 'speaker' });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    const SLOT_MS = 7000;
    const switches: number[] = [Date.now()];
    await sleep(SLOT_MS);
    for (const [next, prev] of [
      [p2, p1],
      [p3, p2],
    ] as const) {
      await next.muteAudio(false);
      await prev.muteAudio(true);
      switches.push(Date.now());
      await sleep(SLOT_MS);
    }
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE);
    const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
    const startMs = Number(done.fileResults[0]?.startedAt ?? 0n) / 1e6;
    const stage = layoutRects('speaker', 3, W, H, false).stage;
    const report = await analyse('speaker-3', path, regionsOf(three, [stage, stage, stage]));
    for (const [k, at] of switches.entries()) {
      // 3 s grace after each switch (speaker detection, then the stage switch), as the original's plan.
      const from = Math.max(1, Math.ceil((at - startMs) / 1000) + 3);
      const to = Math.min(report.seconds - 1, Math.floor((at + SLOT_MS - startMs) / 1000));
      const speakerId = `p${k + 1}`;
      for (const p of report.publishers) {
        const pres = presence(report, p.identity, from, to);
        assert.ok(pres.seconds >= 2, `slot ${k}: ${pres.seconds} s`);
        if (p.identity === speakerId) {
          assert.ok(pres.colour >= 0.95, `slot ${k}: ${speakerId} on stage in ${(pres.colour * 100).toFixed(0)} % (${p.colourSeconds.map(Number).join('')})`);
          assert.ok(pres.tone >= 0.95, `slot ${k}: ${speakerId} audible in ${(pres.tone * 100).toFixed(0)} %`);
        } else {
          assert.equal(pres.colour, 0, `slot ${k}: ${p.identity} not on stage (${p.colourSeconds.map(Number).join('')})`);
          assert.equal(pres.tone, 0, `slot ${k}: muted ${p.identity} silent (${p.toneSeconds.map(Number).join('')})`);
        }
      }
    }
    await Promise.all(three.map((p) => p.stop()));
  });
});
