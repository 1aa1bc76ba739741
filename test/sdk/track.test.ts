/**
 * Track egress (v1 TrackEgressRequest, SDK source) through livekit-server-sdk → livekit-server →
 * Redis → our worker: an Opus microphone track → OGG/Opus (decoded and re-encoded, as the original
 * does for Opus), named by the track placeholders, ending when the track is unpublished; a video
 * track and a WebSocket output are refused with clear errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DirectFileOutput, EgressStatus } from 'livekit-server-sdk';
import { expectTwirpError, livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import type { Publisher } from '../support/publisher.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { analyse, assertPresent, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';

describe('track egress (SDK source) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  test('Opus microphone track → OGG/Opus 48 kHz stereo named t_{track_source}_{publisher_identity}; unpublishing ends it; the tone in every second', async () => {
    const room = 'track-opus';
    const [p1] = await startPublishers(env, room, 1, { video: { codec: 'vp8' } });
    assert.ok(p1);
    pubs.push(p1);
    const sid = p1.trackSids.audio;
    assert.ok(sid);
    const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 't_{track_source}_{publisher_identity}_{track_type}') }), sid);
    assert.equal(info.status, EgressStatus.EGRESS_STARTING);
    const active = await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.sourceType, 1, 'EGRESS_SOURCE_TYPE_SDK');
    await sleep(10_000);
    await p1.unpublishAudio();
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    assert.equal(done.details, 'End reason: Source closed');
    const f = done.fileResults[0];
    assert.ok(f && f.size > 0n && f.duration > 0n, 'file result');
    assert.match(f.filename, /t_microphone_p1_audio\.ogg$/);
    const probe = await ffprobe(f.location);
    assert.equal(videoStream(probe), undefined);
    const a = audioStream(probe);
    assert.equal(a?.codec_name, 'opus');
    assert.equal(Number(a?.sample_rate), 48000);
    assert.equal(a?.channels, 2);
    const reported = Number(f.duration) / 1e9;
    assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
    assert.ok(reported >= 9, `${reported} s recorded`);
    const report = await analyse('track-opus', f.location, regionsOf([p1], [undefined]));
    assertPresent(report, 1, report.seconds - 1, 0.95, { colour: false });
  });

  test('a video track → FAILED, refused by name (no transcode-free video path yet); a WebSocket output → refused up front', async () => {
    const room = 'track-video';
    const [p2] = await startPublishers(env, room, 1, { video: { codec: 'vp8' }, audio: false }, 1);
    assert.ok(p2);
    pubs.push(p2);
    const sid = p2.trackSids.video;
    assert.ok(sid);
    const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'video-track') }), sid);
    const failed = await waitStatus(env, info.egressId, EgressStatus.EGRESS_FAILED, 30_000);
    assert.equal(failed.error, 'video track egress (written without transcoding) is not yet supported by this egress');
    assert.equal(failed.errorCode, 400);
    await expectTwirpError(env.egress.startTrackEgress(room, 'ws://127.0.0.1:9/pcm', sid), 'invalid_argument', 400, /websocket stream output is not yet supported by this egress$/);
  });
});
