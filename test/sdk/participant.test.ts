/**
 * Participant and track composite egress (SDK source: no page, the worker joins the room with
 * @livekit/rtc-node) through the real client path: livekit-server-sdk → livekit-server → Redis →
 * our worker. Outputs are checked by ffprobe and by content (the publisher's colour and tone per
 * second, absent while unpublished; flash ↔ beep A/V offsets printed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EgressStatus, EncodedFileOutput, EncodedFileType } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import { existsSync } from 'node:fs';
import { startPublisher, type PublisherHandle as Publisher } from '../support/publisher.js';
import { waitFor } from '../service/worker-harness.js';
import { SDK_AV_P80_MS, analyse, assertAvSync, assertPresent, checkFile, infoOf, regionsOf, sleep, startPublishers, startRoomEnv, waitFailed, waitStatus, type RoomEnv } from '../room/common.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';
const W = 1280;
const H = 720;
const FULL = { x: 0, y: 0, w: W, h: H };
/** File second of a wall-clock instant (ms) in a recording that started at `startedAtNs`. */
const secondOf = (wallMs: number, startedAtNs: bigint): number => (wallMs - Number(startedAtNs) / 1e6) / 1000;

describe('participant and track composite egress (SDK source) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  // The two 30 s waits for what never appears are started first and checked by their own test
  // below: they wait while the tests before it record, not on their own.
  let missing: Promise<MissingOutcome>;
  before(async () => {
    env = await startRoomEnv();
    missing = requestMissing(env);
    missing.catch(() => undefined); // its test awaits it and reports the error
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  test('participant, VP8 camera + mic: video unpublished and republished is followed, the participant leaving completes it; colour, tone, A/V', async () => {
    const room = 'part-vp8';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const info = await env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, 'participant_{publisher_identity}_vp8_{time}.mp4') }) });
    assert.equal(info.status, EgressStatus.EGRESS_STARTING);
    const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.sourceType, 1, 'EGRESS_SOURCE_TYPE_SDK');
    await sleep(8000);
    const unpublishedAt = Date.now();
    await p1.unpublishVideo();
    // The call takes a signalling round trip (over a second on a busy machine): black is required
    // from a second after it returned.
    const unpublishDoneAt = Date.now();
    await sleep(5000);
    const republishedAt = Date.now();
    await p1.publishVideo();
    await sleep(8000);
    const leftAt = Date.now();
    await p1.disconnect();
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    assert.equal(done.details, 'End reason: Source closed');
    assert.equal(done.error, '');
    const f = done.fileResults[0];
    assert.ok(f);
    assert.match(f.filename, /participant_p1_vp8_\d{4}-\d\d-\d\dT\d{6}\.mp4$/);
    const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
    const report = await analyse('participant-vp8', path, regionsOf([p1], [FULL]));
    // Whole seconds of the file, with a second of margin around each change.
    const u = Math.floor(secondOf(unpublishedAt, f.startedAt));
    const r = Math.ceil(secondOf(republishedAt, f.startedAt));
    const l = Math.floor(secondOf(leftAt, f.startedAt));
    // Published: colour and tone (a republished track needs a keyframe and the subscription: 3 s grace).
    assertPresent(report, 1, u - 1);
    assertPresent(report, r + 3, l - 1);
    assertPresent(report, u + 1, r - 1, 0.95, { colour: false });
    // Unpublished: black, no colour.
    const pm = report.publishers[0];
    assert.ok(pm);
    const gap = pm.colourSeconds.slice(Math.floor(secondOf(unpublishDoneAt, f.startedAt)) + 1, r - 1);
    assert.ok(gap.length >= 2 && gap.every((c) => !c), `no colour while unpublished (${gap.map(Number).join('')})`);
    assertAvSync(report, SDK_AV_P80_MS);
  });

  test('participant that never publishes and leaves → ABORTED', async () => {
    const room = 'part-nopub';
    const [p2] = await startPublishers(env, room, 1, { video: false, audio: false });
    assert.ok(p2);
    pubs.push(p2);
    const info = await env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, 'nopub.mp4') }) });
    await sleep(5000);
    await p2.disconnect();
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ABORTED, 30_000);
    assert.equal(done.fileResults[0]?.size ?? 0n, 0n);
  });

  test('participant that never joins → FAILED `participant … not found` after 30 s; track composite: a track id that is never published → FAILED `track … not found` after 30 s (both at once, started with the suite)', async () => {
    const { done, tcDone } = await missing;
    assert.equal(done.info.error, 'participant nobody not found');
    assert.equal(done.info.errorCode, 404);
    assert.ok(done.ms >= 28_000, `waited ${done.ms} ms`);
    assert.equal(tcDone.info.error, 'track TR_nothere not found');
    assert.equal(tcDone.info.errorCode, 404);
    assert.ok(tcDone.ms >= 28_000, `waited ${tcDone.ms} ms`);
  });

  test('track composite, VP8 video + Opus audio → MP4 named after the publisher; colour, tone, A/V', async () => {
    const room = 'tc';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const { video, audio } = p1.trackSids;
    assert.ok(video && audio);
    const info = await env.egress.startTrackCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'tc_{publisher_identity}_vp8_{time}.mp4') }) }, { audioTrackId: audio, videoTrackId: video });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(12_000);
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE);
    assert.equal(done.details, 'End reason: StopEgress API');
    assert.match(done.fileResults[0]?.filename ?? '', /tc_p1_vp8_/);
    const { path } = await checkFile(done, { width: W, height: H, profile: 'Main', audio: true, video: true });
    const report = await analyse('track-composite', path, regionsOf([p1], [FULL]));
    assertPresent(report, 1, report.seconds - 1);
    assertAvSync(report, SDK_AV_P80_MS);
    // Its audio track alone, as OGG; the track being unpublished ends it.
    const audioOnly = await env.egress.startTrackCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'tc-audio'), fileType: EncodedFileType.OGG }) }, { audioTrackId: audio });
    await waitStatus(env, audioOnly.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(8000);
    await p1.unpublishAudio();
    const doneAudio = await waitStatus(env, audioOnly.egressId, EgressStatus.EGRESS_COMPLETE);
    assert.equal(doneAudio.details, 'End reason: Source closed');
    const fa = doneAudio.fileResults[0];
    assert.ok(fa && fa.location.endsWith('.ogg'), fa?.location);
    const probe = await ffprobe(fa.location);
    assert.equal(videoStream(probe), undefined);
    assert.equal(audioStream(probe)?.codec_name, 'opus');
    assert.ok(Math.abs(Number(probe.format.duration) - Number(fa.duration) / 1e9) <= 1, `duration ${probe.format.duration} vs ${Number(fa.duration) / 1e9}`);
    const tones = await analyse('track-composite-audio', fa.location, regionsOf([p1], [undefined]));
    assertPresent(tones, 1, tones.seconds - 1, 0.95, { colour: false });
  });

  test('participant: the recorder losing its room connection → FAILED `connection to room failed`, the partial file delivered', async () => {
    const room = 'part-lost';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const info = await env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, 'part-lost.mp4') }) });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(6000);
    await env.rooms.removeParticipant(room, info.egressId);
    const failed = await waitStatus(env, info.egressId, EgressStatus.EGRESS_FAILED);
    assert.equal(failed.error, 'recording ended early: connection to room failed');
    assert.equal(failed.errorCode, 503);
    const f = failed.fileResults[0];
    assert.ok(f && f.location !== '' && f.size > 0n, 'partial file delivered');
    const probe = await ffprobe(f.location);
    const container = Number(probe.format.duration);
    assert.ok(Math.abs(container - Number(f.duration) / 1e9) <= 1, `container ${container} s vs reported ${Number(f.duration) / 1e9} s`);
    assert.ok(container >= 4, `${container} s recorded`);
    await p1.stop();
  });

  test('participant: a client joining with the egress identity → the handler exits silently (no further status, nothing uploaded)', async () => {
    const room = 'part-dup';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const out = join(env.dir, 'part-dup.mp4');
    const info = await env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: out }) });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(3000);
    const intruder = await startPublisher({ wsUrl: env.lk.wsUrl, apiKey: env.lk.apiKey, apiSecret: env.lk.apiSecret, room, identity: info.egressId, colour: [0, 0, 0], toneHz: 400, video: false, audio: false });
    pubs.push(intruder);
    await waitFor('handler exit', () => (env.worker.handlers().has(info.egressId) ? undefined : true), 30_000);
    await env.worker.waitForLog(new RegExp(`exited silently.*${info.egressId}`), 5000);
    await sleep(1000);
    assert.equal((await infoOf(env, info.egressId))?.status, EgressStatus.EGRESS_ACTIVE, 'the last status stands');
    assert.ok(!existsSync(out), 'nothing delivered');
    await intruder.stop();
    await p1.stop();
  });
});

interface MissingOutcome {
  done: Awaited<ReturnType<typeof waitFailed>>;
  tcDone: Awaited<ReturnType<typeof waitFailed>>;
}

/** A participant egress for an identity that never joins and a track composite for a track id never published, each in its own room. */
async function requestMissing(env: RoomEnv): Promise<MissingOutcome> {
  const room = 'part-missing';
  await env.rooms.createRoom({ name: room });
  const info = await env.egress.startParticipantEgress(room, 'nobody', { file: new EncodedFileOutput({ filepath: join(env.dir, 'missing.mp4') }) });
  const t0 = Date.now();
  const tcRoom = 'tc-missing';
  await env.rooms.createRoom({ name: tcRoom });
  const tcInfo = await env.egress.startTrackCompositeEgress(tcRoom, { file: new EncodedFileOutput({ filepath: join(env.dir, 'tc-missing.mp4') }) }, { videoTrackId: 'TR_nothere' });
  const tcT0 = Date.now();
  const [done, tcDone] = await Promise.all([waitFailed(env, info.egressId, t0), waitFailed(env, tcInfo.egressId, tcT0)]);
  return { done, tcDone };
}
