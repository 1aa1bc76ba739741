/**
 * A video track egress (written as published, no transcode) whose frames reach the egress out of
 * order, as they do when a lost packet comes back through a retransmission after the frames that
 * follow it: through livekit-server-sdk → livekit-server → Redis → our worker, with the track page's
 * test hook (EGRESS_TEST_TRACK_FAULTS) holding frames back.
 * - every 7th delta frame two frames late: each is put back in its place, and the file shows the
 *   publisher's colour in every second and its flash once a second, and decodes without an error
 *   (written where they came, out of order, they are lost to the decoder: flashes go missing or
 *   the wrong colour stays until a keyframe);
 * - one frame 40 frames (1.3 s) late, past the reorder window: it is dropped, with the delta frames
 *   after it until a keyframe, which the egress asks the publisher for at once — the file holds the
 *   last good picture for a moment instead of a damaged one until the publisher's next keyframe.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DirectFileOutput, EgressStatus } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { setLogLevel } from '../../main/log.js';
import type { PublisherHandle as Publisher } from '../support/publisher.js';
import { ffprobe, videoStream } from '../support/media.js';
import { analyse, assertPresent, regionsOf, sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../room/common.js';
import { keepWorkerLog } from '../support/worker-log.js';

setLogLevel('error');
const execFileP = promisify(execFile);
const skip = livekitBinary() ? false : 'livekit-server not built: bash scripts/setup.sh --test';

/**
 * 7 is coprime with the publisher's 30 frames a second: the held-back frames fall on every position in
 * its one-second flash cycle, so some are the frames where the picture turns white or back, whose
 * loss leaves the wrong colour on screen until a keyframe (what the colour check sees).
 */
const REORDER_EVERY = 7;
/**
 * Early (~1 s in), so the rest of the file (from CLEAN_FROM_S) must be free of its effects. Before
 * that the frames written while it was missing may be damaged: nothing can mend those.
 */
const LATE_FRAME = 30;
const LATE_BY = 40;
/** Past the late frame's arrival (~2.3 s) and the keyframe asked for then. */
const CLEAN_FROM_S = 4;

describe('video track egress with frames arriving out of order (SDK source, no transcode)', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  before(async () => {
    env = await startRoomEnv({}, { EGRESS_TEST_TRACK_FAULTS: `reorder=${REORDER_EVERY}:2&late=${LATE_FRAME}:${LATE_BY}` });
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  test(`VP8 track → WebM: every ${REORDER_EVERY}th frame 2 frames late is put back in place; a frame ${LATE_BY} frames late is dropped with what follows until a keyframe, asked for at once`, async () => {
    const room = 'track-reorder';
    const [p] = await startPublishers(env, room, 1, { video: { codec: 'vp8' }, audio: false });
    assert.ok(p);
    pubs.push(p);
    const sid = p.trackSids.video;
    assert.ok(sid);
    const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'reorder-{track_id}') }), sid);
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
    // 13 s: some 35 frames held back after CLEAN_FROM_S, so in nearly every run one is on a flash's edge.
    await sleep(13_000);
    await env.egress.stopEgress(info.egressId);
    const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    const f = done.fileResults[0];
    assert.ok(f && f.size > 0n, 'file result');
    // What the writer did, from the worker's log.
    const line = env.worker.logs().split('\n').find((l) => l.includes('passthrough video:') && l.includes(info.egressId)) ?? '';
    process.stdout.write(`# ${line.replace(/^.*passthrough video: /, '')}\n`);

    const v = videoStream(await ffprobe(f.location));
    assert.equal(v?.codec_name, 'vp8');
    const { stderr: decodeErrors } = await execFileP('ffmpeg', ['-v', 'error', '-i', f.location, '-f', 'null', '-']);
    assert.equal(decodeErrors.trim(), '', 'decodes without errors');
    const report = await analyse('track-reorder', f.location, regionsOf([p], [{ x: 0, y: 0, w: 640, h: 360 }]));
    try {
      // Past the late frame's stretch: the colour in every second, every flash a second apart.
      assertPresent(report, CLEAN_FROM_S, report.seconds - 1, 0.95, { tone: false });
      const onsets = (report.publishers[0]?.flashOnsets ?? []).filter((t) => t >= CLEAN_FROM_S);
      const gaps = onsets.slice(1).map((t, i) => t - (onsets[i] as number));
      const expected = Math.floor(report.seconds - CLEAN_FROM_S) - 1;
      assert.ok(onsets.length >= expected && gaps.every((g) => Math.abs(g - 1) < 0.15), `flashes from ${CLEAN_FROM_S} s at ${onsets.map((t) => t.toFixed(2)).join(' ')} (at least ${expected}, a second apart)`);
    } catch (err) {
      await keepWorkerLog(env.worker, 'track-reorder', err);
    }

    const m = /(\d+) frames written \((\d+) put back in RTP order\), keyframes at ([\d. ]+) s; dropped \d+ before the first keyframe, (\d+) too late and (\d+) after them until a keyframe/.exec(line);
    assert.ok(m, `the writer's summary in the worker log: ${line}`);
    const [written, reordered, late, awaiting] = [m[1], m[2], m[4], m[5]].map(Number) as [number, number, number, number];
    const keyTimes = (m[3] as string).trim().split(' ').map(Number);
    // Frames are held back from the first one the page reads, a little before the recording starts.
    const expectedReordered = Math.floor(written / REORDER_EVERY);
    assert.ok(reordered >= expectedReordered - 2, `${reordered} frames put back in order, ${expectedReordered} held back`);
    assert.equal(late, 1, 'the one frame past the window');
    // The frames waiting in the window when the late one came (15), then those until the keyframe
    // asked for arrives: a round trip to the publisher. Without the request they would wait for the
    // browser's own request, up to 3 s (90 frames).
    assert.ok(awaiting >= 1 && awaiting <= 30, `${awaiting} frames waited for the keyframe asked for (keyframes at ${keyTimes.join(' ')} s)`);
  });
});
