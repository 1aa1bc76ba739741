/**
 * How a video track egress (written as published, no transcode) ends without a StopEgress, through
 * livekit-server-sdk → livekit-server → Redis → our worker: the track unpublished, its publisher
 * leaving, the room deleted. Each ends COMPLETE with `End reason: Source closed`, as the original's
 * track egress does, and delivers a file that plays, starts on a keyframe, holds the publisher's
 * colour until the end and lasts as long as the track was recorded (the container within 1 s of the
 * reported duration, the reported one within 1.5 s of the time between ACTIVE and the ending).
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

const RECORD_MS = 8000;

describe('video track egress endings (SDK source, no transcode) through livekit-server', { skip }, () => {
  let env: RoomEnv;
  const pubs: Publisher[] = [];

  before(async () => {
    env = await startRoomEnv();
  });

  after(async () => {
    await Promise.all(pubs.map((p) => p.stop()));
    await env?.close();
  });

  const endings: { name: string; end: (p: Publisher, room: string) => Promise<void> }[] = [
    { name: 'the track is unpublished', end: (p) => p.unpublishVideo() },
    { name: 'its publisher leaves', end: (p) => p.disconnect() },
    {
      name: 'the room is deleted',
      end: async (_p, room) => {
        await env.rooms.deleteRoom(room);
      },
    },
  ];

  endings.forEach(({ name, end }, i) => {
    test(`VP8 track → WebM; ${name} → COMPLETE "Source closed", the file ends there and plays`, async () => {
      const room = `track-end-${i}`;
      const [p] = await startPublishers(env, room, 1, { video: { codec: 'vp8' }, audio: false }, i);
      assert.ok(p);
      pubs.push(p);
      const sid = p.trackSids.video;
      assert.ok(sid);
      const info = await env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, `end-${i}-{track_id}`) }), sid);
      await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
      const activeAt = Date.now();
      await sleep(RECORD_MS);
      const endedAt = Date.now();
      await end(p, room);
      const done = await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
      assert.equal(done.details, 'End reason: Source closed');
      const f = done.fileResults[0];
      assert.ok(f && f.size > 0n, 'file result');
      const probe = await ffprobe(f.location);
      const v = videoStream(probe);
      assert.equal(v?.codec_name, 'vp8');
      assert.equal(v?.width, 640);
      assert.equal(v?.height, 360);
      const reported = Number(f.duration) / 1e9;
      const recorded = (endedAt - activeAt) / 1000;
      process.stdout.write(`# ${name}: reported ${reported.toFixed(2)} s, container ${Number(probe.format.duration).toFixed(2)} s, ACTIVE → ending ${recorded.toFixed(2)} s\n`);
      assert.ok(Math.abs(Number(probe.format.duration) - reported) <= 1, `container ${probe.format.duration} s vs reported ${reported} s`);
      // ACTIVE is reported once the first keyframe is written; the ending reaches the recorder within
      // a signalling round trip. Nothing is padded after the track is gone.
      assert.ok(Math.abs(reported - recorded) <= 1.5, `reported ${reported} s vs ${recorded.toFixed(2)} s between ACTIVE and the ending`);
      const { stdout: firstPacket } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1', '-show_entries', 'packet=flags', '-of', 'csv=p=0', f.location]);
      assert.match(firstPacket.trim(), /^K/, `first packet flags ${firstPacket.trim()}`);
      const { stderr: decodeErrors } = await execFileP('ffmpeg', ['-v', 'error', '-i', f.location, '-f', 'null', '-']);
      assert.equal(decodeErrors.trim(), '', 'decodes without errors');
      // Every frame is the publisher's picture: none of the SFU's 8x8 blank frames it ends a track with.
      const { stdout: sizes } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width,height', '-of', 'csv=p=0', f.location]);
      const odd = sizes.trim().split('\n').filter((l) => l !== '640,360');
      assert.deepEqual(odd, [], 'every frame 640x360');
      const report = await analyse(`track-end-${i}`, f.location, regionsOf([p], [{ x: 0, y: 0, w: 640, h: 360 }]));
      // A damaged stretch: the worker's log says where the source's keyframes were.
      try {
        assertPresent(report, 1, report.seconds - 1, 0.95, { tone: false });
      } catch (err) {
        await keepWorkerLog(env.worker, `track-end-${i}`, err);
      }
    });
  });
});
