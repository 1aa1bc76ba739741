/**
 * RTMP through the worker path: livekit-server-sdk EgressClient → livekit-server v1.13.5 → Redis →
 * our worker → handler; UpdateStream add/remove reaches the running handler, a bad URL fails alone,
 * an unknown URL is the original's 404, and the final StreamInfo list holds every URL ever added.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EgressStatus, EncodedFileOutput, ImageOutput, SegmentedFileOutput, StreamOutput, StreamProtocol } from 'livekit-server-sdk';
import { StreamInfo_Status } from '@livekit/protocol';
import { expectTwirpError, livekitBinary } from '../harness/livekit.js';
import { sleep } from '../harness/redis.js';
import { freePort } from '../harness/storage.js';
import { rtmpServerAvailable, startRtmpServer, type RtmpServer } from '../harness/rtmp.js';
import { setLogLevel } from '../../main/log.js';
import { ffprobe } from '../support/media.js';
import { checkHls } from '../support/hls.js';
import { infoOf, startEnv, waitStatus, type Env } from '../service/common.js';
import { waitEnd } from '../support/worker-log.js';
import { startWorker, waitFor, type WorkerProc } from '../service/worker-harness.js';

setLogLevel('error');
const skip = !livekitBinary() ? 'livekit-server not built: bash scripts/install-livekit.sh' : !rtmpServerAvailable() ? 'nginx + libnginx-mod-rtmp not installed' : false;

describe('RTMP via egress serve', { skip }, () => {
  let env: Env;
  let w: WorkerProc;
  let rtmp: RtmpServer;
  before(async () => {
    env = await startEnv();
    rtmp = await startRtmpServer();
    w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp'), cwd: env.dir, name: 'rtmp' });
  });
  after(async () => {
    await w?.kill();
    await rtmp?.stop();
    await env?.close();
  });

  test('startWebEgress(file + RTMP [good1, bad1]); UpdateStream add good2, remove good1, unknown URL → not found; stop → COMPLETE', async () => {
    const good1 = `${rtmp.liveUrl}workergood1`;
    const good2 = `${rtmp.liveUrl}workergood2`;
    const bad1 = `rtmp://127.0.0.1:${await freePort()}/live/workerbad1`;
    const r1 = `${rtmp.liveUrl}{wor...od1}`;
    const r2 = `${rtmp.liveUrl}{wor...od2}`;
    const info = await env.api.startWebEgress(env.pageUrl, {
      file: new EncodedFileOutput({ filepath: join(env.dir, 'rtmp.mp4') }),
      stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [good1, bad1] }),
    });
    await waitStatus(env.api, info.egressId, EgressStatus.EGRESS_ACTIVE);
    const failedSeen = await waitFor(
      'bad1 FAILED in the stored info',
      async () => {
        const i = await infoOf(env.api, info.egressId);
        return i?.streamResults.find((s) => s.url.endsWith('{wor...ad1}') && s.status === StreamInfo_Status.FAILED) ? i : undefined;
      },
      20_000,
    );
    assert.equal(failedSeen.streamResults.find((s) => s.url === r1)?.status, StreamInfo_Status.ACTIVE);
    assert.equal(failedSeen.status, EgressStatus.EGRESS_ACTIVE);

    const added = await env.api.updateStream(info.egressId, [good2]);
    assert.deepEqual(
      added.streamResults.map((s) => [s.url, s.status]),
      [
        [r1, StreamInfo_Status.ACTIVE],
        [bad1.replace('workerbad1', '{wor...ad1}'), StreamInfo_Status.FAILED],
        [r2, StreamInfo_Status.ACTIVE],
      ],
    );
    // The handler answers not_found (404, the original's code); livekit-server v1.13.5 relays it to
    // the Twirp client as `unknown`, so only the text is checked here.
    await assert.rejects(env.api.updateStream(info.egressId, [], ['rtmp://127.0.0.1/live/nosuchkey']), /stream rtmp:\/\/127\.0\.0\.1\/live\/nosuchkey not found$/);
    await sleep(6000);
    const removed = await env.api.updateStream(info.egressId, [], [good1]);
    assert.equal(removed.streamResults.find((s) => s.url === r1)?.status, StreamInfo_Status.FINISHED);
    await sleep(3000);
    await env.api.stopEgress(info.egressId);
    const done = await waitStatus(env.api, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
    assert.equal(done.streamResults.length, 3);
    assert.equal(done.streamResults.find((s) => s.url === r2)?.status, StreamInfo_Status.FINISHED);
    assert.ok(!JSON.stringify(done.toJson()).includes('workergood'), 'no stream key in the stored info');
    for (const key of ['workergood1', 'workergood2']) {
      const rec = join(rtmp.recordDir, `${key}.flv`);
      await waitFor(`${key}.flv`, () => (existsSync(rec) ? true : undefined));
      assert.ok(Number((await ffprobe(rec)).format.duration) > 2, key);
    }
    // The file holds what was reported: ACTIVE → stop, which the waits above make at least 9 s.
    const reported = Number(done.fileResults[0]?.duration ?? 0n) / 1e9;
    const onDisk = Number((await ffprobe(join(env.dir, 'rtmp.mp4'))).format.duration);
    assert.ok(reported >= 9, `reported ${reported} s`);
    assert.ok(Math.abs(onDisk - reported) <= 0.2, `file ${onDisk} s, reported ${reported} s`);
    await expectTwirpError(env.api.updateStream(info.egressId, [good1]), 'failed_precondition', 412, /cannot be updated/);
  });
});

describe('session limit with every live output (file + HLS + RTMP + images) via egress serve', { skip }, () => {
  let env: Env;
  let w: WorkerProc;
  let rtmp: RtmpServer;
  before(async () => {
    env = await startEnv();
    rtmp = await startRtmpServer();
    w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp'), cwd: env.dir, name: 'limits', extra: { session_limits: { segment_output_max_duration: '10s' } } });
  });
  after(async () => {
    await w?.kill();
    await rtmp?.stop();
    await env?.close();
  });

  test('segment_output_max_duration 10s → LIMIT_REACHED 413, every output finalised: file, playlist with ENDLIST, stream FINISHED, images', async () => {
    const dir = join(env.dir, 'limit');
    const info = await env.api.startWebEgress(env.pageUrl, {
      file: new EncodedFileOutput({ filepath: join(dir, 'all.mp4') }),
      stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [`${rtmp.liveUrl}limitstreamkey`] }),
      segments: new SegmentedFileOutput({ filenamePrefix: join(dir, 'seg'), playlistName: 'all.m3u8', segmentDuration: 2 }),
      images: new ImageOutput({ captureInterval: 2, filenamePrefix: join(dir, 'img/thumb') }),
    });
    // Any end, not just the one expected: an egress that ended otherwise fails here at once, saying how.
    const done = await waitEnd(env.api, w, 'limits', info.egressId, EgressStatus.EGRESS_LIMIT_REACHED, 90_000);
    assert.equal(done.error, 'Session limit reached');
    assert.equal(done.errorCode, 413);
    const file = done.fileResults[0];
    assert.ok(file && file.size > 0n);
    const fileDur = Number((await ffprobe(join(dir, 'all.mp4'))).format.duration);
    // the limit counts from the page's load, like the original (its handler starts the timer once its
    // source exists): the capture's own start comes out of it
    assert.ok(fileDur > 3 && fileDur < 10, `file ${fileDur} s`);
    const seg = done.segmentResults[0];
    assert.ok(seg);
    const pl = await checkHls({ playlistPath: join(dir, 'all.m3u8'), segmentDurationS: 2, info: seg });
    const hlsDur = pl.segments.reduce((a, s) => a + s.duration, 0);
    assert.ok(Math.abs(hlsDur - fileDur) < 0.15, `hls ${hlsDur} s vs file ${fileDur} s`);
    assert.equal(done.streamResults[0]?.status, StreamInfo_Status.FINISHED);
    assert.equal(done.streamResults[0]?.url, `${rtmp.liveUrl}{lim...key}`);
    const img = done.imageResults[0];
    assert.ok(img);
    assert.ok(Math.abs(Number(img.imageCount) - fileDur / 2) <= 1, `${img.imageCount} images in ${fileDur} s`);
    const rec = join(rtmp.recordDir, 'limitstreamkey.flv');
    await waitFor('limitstreamkey.flv', () => (existsSync(rec) ? true : undefined));
    assert.ok(Number((await ffprobe(rec)).format.duration) > 3);
  });
});
