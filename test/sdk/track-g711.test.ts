/**
 * Track egress of G.711 audio (PCMU and PCMA, what SIP participants publish) through
 * livekit-server-sdk → livekit-server → Redis → our worker: each track lands in OGG/Opus 48 kHz
 * stereo as the original writes it, with the publisher's tone in every second it was recorded; a
 * PCMU track in an audio-only track composite lands in MP4/AAC.
 * The publishers are livekit-client pages that offer only the G.711 codec (rtc-node always sends Opus).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DirectFileOutput, EgressStatus, EncodedFileOutput, EncodedFileType } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { startG711Publisher, type G711Publisher } from '../support/g711-publisher.js';
import { analyse, assertPresent, sleep, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';

setLogLevel('error');
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';

describe('G.711 track egress (SDK source) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: G711Publisher[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  for (const [codec, toneHz] of [['PCMU', 523], ['PCMA', 784]] as const) {
    test(`${codec} microphone track → OGG/Opus 48 kHz stereo, the tone in every second, ±1 s of the reported duration`, async () => {
      const room = `track-${codec.toLowerCase()}`;
      const identity = `sip-${codec.toLowerCase()}`;
      const pub = await startG711Publisher({ wsUrl: env.lk.wsUrl, apiKey: env.lk.apiKey, apiSecret: env.lk.apiSecret, room, identity, codec, toneHz }, env.rooms);
      pubs.push(pub);
      assert.equal(pub.mimeType.toLowerCase(), `audio/${codec.toLowerCase()}`, 'the server registered the track as G.711');
      const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 't_{track_source}_{publisher_identity}') }), pub.trackSid);
      await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
      await sleep(10_000);
      await env.egress.stopEgress(info.egressId);
      const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
      const f = done.fileResults[0];
      assert.ok(f && f.size > 0n && f.duration > 0n, 'file result');
      assert.match(f.filename, new RegExp(`t_microphone_${identity}\\.ogg$`));
      const probe = await ffprobe(f.location);
      assert.equal(videoStream(probe), undefined);
      const a = audioStream(probe);
      assert.equal(a?.codec_name, 'opus');
      assert.equal(Number(a?.sample_rate), 48000);
      assert.equal(a?.channels, 2);
      const reported = Number(f.duration) / 1e9;
      assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
      assert.ok(reported >= 9, `${reported} s recorded`);
      const report = await analyse(`track-${codec}`, f.location, [{ identity, colour: [0, 0, 0], toneHz }]);
      assertPresent(report, 1, report.seconds - 1, 0.95, { colour: false });
    });
  }

  test('PCMU audio-only track composite → MP4 with AAC, the tone in every second', async () => {
    const pub = pubs.find((p) => p.identity === 'sip-pcmu');
    assert.ok(pub, 'the PCMU publisher of the first test');
    const info = await env.egress.startTrackCompositeEgress('track-pcmu', new EncodedFileOutput({ fileType: EncodedFileType.MP4, filepath: join(env.dir, 'tc-pcmu') }), { audioTrackId: pub.trackSid });
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE);
    await sleep(8000);
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    const f = done.fileResults[0];
    assert.ok(f && f.size > 0n, 'file result');
    assert.match(f.filename, /tc-pcmu\.mp4$/);
    const probe = await ffprobe(f.location);
    assert.equal(audioStream(probe)?.codec_name, 'aac');
    const reported = Number(f.duration) / 1e9;
    assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
    const report = await analyse('track-composite-PCMU', f.location, [{ identity: pub.identity, colour: [0, 0, 0], toneHz: 523 }]);
    assertPresent(report, 1, report.seconds - 1, 0.95, { colour: false });
  });
});
