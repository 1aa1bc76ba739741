/**
 * HLS through the worker path: livekit-server-sdk EgressClient → livekit-server v1.13.5 → Redis →
 * our worker → a handler recording the demo page to a file and HLS segments from one encode.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EgressStatus, EncodedFileOutput, SegmentedFileOutput } from 'livekit-server-sdk';
import { SegmentedFileSuffix } from '@livekit/protocol';
import { livekitBinary } from '../harness/livekit.js';
import { sleep } from '../harness/redis.js';
import { setLogLevel } from '../../main/log.js';
import { checkHls } from '../support/hls.js';
import { ffprobe } from '../support/media.js';
import { startEnv, waitStatus, type Env } from '../service/common.js';
import { waitEnd } from '../support/worker-log.js';
import { startWorker, waitFor, type WorkerProc } from '../service/worker-harness.js';

setLogLevel('error');
const binary = livekitBinary();

describe('HLS via egress serve', { skip: binary ? false : 'livekit-server not built: bash scripts/install-livekit.sh' }, () => {
  let env: Env;
  let w: WorkerProc;
  before(async () => {
    env = await startEnv();
    w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp'), cwd: env.dir, name: 'hls' });
  });
  after(async () => {
    await w?.kill();
    await env?.close();
  });

  test('startWebEgress(file + segments): ACTIVE, stop → COMPLETE with SegmentsInfo; playlist and segments verified', async () => {
    const dir = join(env.dir, 'hls');
    const info = await env.api.startWebEgress(env.pageUrl, {
      file: new EncodedFileOutput({ filepath: join(dir, 'rec.mp4') }),
      segments: new SegmentedFileOutput({
        filenamePrefix: join(dir, 'web_{time}'),
        playlistName: 'web.m3u8',
        livePlaylistName: 'web_live.m3u8',
        segmentDuration: 2,
        filenameSuffix: SegmentedFileSuffix.TIMESTAMP,
      }),
    });
    assert.equal(info.status, EgressStatus.EGRESS_STARTING);
    const active = await waitStatus(env.api, info.egressId, EgressStatus.EGRESS_ACTIVE);
    assert.equal(active.segmentResults.length, 1);
    await sleep(10_000);
    await env.api.stopEgress(info.egressId);
    const done = await waitEnd(env.api, w, 'hls', info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
    const seg = done.segmentResults[0];
    assert.ok(seg);
    assert.equal(seg.playlistName, join(dir, 'web.m3u8'));
    assert.equal(seg.livePlaylistName, join(dir, 'web_live.m3u8'));
    assert.ok(!seg.playlistName.includes('{'));
    const pl = await checkHls({ playlistPath: join(dir, 'web.m3u8'), livePlaylistPath: join(dir, 'web_live.m3u8'), segmentDurationS: 2, timestampNames: true, info: seg });
    assert.ok(pl.segments.length >= 5, `${pl.segments.length} segments`);
    assert.match(pl.segments[0]?.uri ?? '', /^web_\d{4}-\d\d-\d\dT\d{6}_\d{17}\.ts$/);
    const mp4 = Number((await ffprobe(join(dir, 'rec.mp4'))).format.duration);
    const hls = pl.segments.reduce((a, s) => a + s.duration, 0);
    assert.ok(Math.abs(mp4 - hls) < 0.15, `mp4 ${mp4} s vs hls ${hls} s`);
    await waitFor('handler exit', () => (w.handlers().size === 0 ? true : undefined));
  });
});
