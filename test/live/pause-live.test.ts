/**
 * Pause / resume with live outputs (beyond the original): one web egress writing a file, HLS and
 * RTMP (through a counting loopback proxy to nginx) is paused for 10 s.
 * - File and HLS: the paused time is cut out of both, the same way (seamless continuation; the HLS
 *   playlist has no discontinuity and PROGRAM-DATE-TIME follows the media: recording start + running
 *   time, so consecutive PDTs still differ by EXTINF and after a pause the PDT trails the wall clock
 *   by the paused time).
 * - RTMP: the live viewer keeps receiving during the pause — the last frame repeated with AAC
 *   silence, timestamps following the wall clock —, so the received stream has no gap and lasts the
 *   whole wall-clock time; the URL stays ACTIVE (the liveness check sees progress).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EgressStatus, EncodingOptions, SegmentedFileOutput, StreamInfo_Status, StreamOutput, StreamProtocol } from '@livekit/protocol';
import { rtmpServerAvailable, startRtmpServer, type RtmpServer } from '../harness/rtmp.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { audioStream, ffprobe, videoStream } from '../support/media.js';
import { checkHls } from '../support/hls.js';
import { runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import type { WebEgressController } from '../../main/egress/web-egress.js';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let tmp: { path: string; remove: () => Promise<void> };
let rtmp: RtmpServer;
let proxy: TcpProxy;
before(async () => {
  tmp = await tempDir();
  if (rtmpServerAvailable()) {
    rtmp = await startRtmpServer();
    proxy = await startTcpProxy(rtmp.port);
  }
});
after(async () => {
  await proxy?.close();
  await rtmp?.stop();
  await tmp?.remove();
});

/** Timestamps of one stream's packets (s), in decode order. */
async function packetTimes(path: string, stream: 'v:0' | 'a:0'): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=dts_time', '-of', 'csv=p=0', path], { maxBuffer: 1 << 26 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.split(',')[0]))
    .filter((t) => Number.isFinite(t));
}

function largestGap(times: number[]): number {
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] as number) - (times[i - 1] as number));
  return gap;
}

describe('pause / resume with live outputs', { skip: rtmpServerAvailable() ? false : 'nginx + libnginx-mod-rtmp not installed (scripts/setup.sh)' }, () => {
  it('file + HLS + RTMP, 10 s pause: file and HLS continue seamlessly; the RTMP viewer keeps receiving (last frame + silence) and the stream has no gap', async () => {
    const PAUSE_MS = 10_000;
    const dir = join(tmp.path, 'hls');
    const url = `rtmp://127.0.0.1:${proxy.port}/live/pausedstreamkey`;
    let c: WebEgressController | null = null;
    let activeAt = 0;
    let stoppedAt = 0;
    let duringPause = 0;
    let statusDuringPause: StreamInfo_Status | undefined;
    const flow = (async () => {
      while (!c) await sleep(50);
      activeAt = Date.now();
      const ctl = c as WebEgressController;
      await sleep(6000);
      assert.ok(ctl.pause(), 'paused');
      await sleep(2000); // what was encoded before the pause drains first
      const b0 = proxy.bytesForwarded;
      await sleep(PAUSE_MS - 3000);
      duringPause = proxy.bytesForwarded - b0;
      statusDuringPause = ctl.info.streamResults[0]?.status;
      await sleep(1000);
      assert.ok(ctl.resume(), 'resumed');
      await sleep(6000);
      stoppedAt = Date.now();
      ctl.stop();
    })();
    const { info } = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: {
          url: base + 'demo/',
          options: { case: 'advanced', value: new EncodingOptions({ width: 960, height: 540, framerate: 25, keyFrameInterval: 2 }) },
          streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [url] })],
          segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: join(dir, 'seg'), playlistName: 'pl.m3u8', segmentDuration: 2 })],
        },
        tmpDir: join(tmp.path, 'work'),
        timeoutMs: 120_000,
        onActive: (ctl) => (c ??= ctl),
      }),
    );
    await flow;
    assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
    assert.match(info.details, /; paused \S+Z\/\S+Z$/);
    const wallS = (stoppedAt - activeAt) / 1000;

    // RTMP: still receiving while paused; ACTIVE throughout; the received stream spans the wall clock without a gap.
    const kbPerS = duringPause / 1024 / ((PAUSE_MS - 3000) / 1000);
    assert.ok(kbPerS > 5, `${kbPerS.toFixed(1)} KiB/s reached the server while paused`);
    assert.equal(statusDuringPause, StreamInfo_Status.ACTIVE);
    const s = info.streamResults[0];
    assert.equal(s?.status, StreamInfo_Status.FINISHED, s?.error);
    assert.equal(s?.retries, 0);
    const rec = join(rtmp.recordDir, 'pausedstreamkey.flv');
    for (let i = 0; i < 100 && !existsSync(rec); i++) await sleep(100);
    const recProbe = await ffprobe(rec);
    assert.equal(videoStream(recProbe)?.codec_name, 'h264');
    assert.equal(audioStream(recProbe)?.codec_name, 'aac');
    const recDur = Number(recProbe.format.duration);
    const vGap = largestGap(await packetTimes(rec, 'v:0'));
    const aTimes = await packetTimes(rec, 'a:0');
    assert.ok(aTimes.length > 100, `${aTimes.length} audio packets received`);
    const aGap = largestGap(aTimes);
    const { stderr: recErrors } = await run('ffmpeg', ['-v', 'error', '-i', rec, '-f', 'null', '-'], { maxBuffer: 1 << 24 });
    console.log(`# RTMP during the pause: ${kbPerS.toFixed(1)} KiB/s; received ${recDur.toFixed(2)} s for ${wallS.toFixed(2)} s of wall clock; largest video gap ${vGap.toFixed(3)} s, audio gap ${aGap.toFixed(3)} s`);
    assert.ok(recDur >= wallS - 3, `the received stream lasts ${recDur} s, the wall clock ${wallS} s: the pause is in it`);
    assert.ok(vGap <= 0.5, `largest video gap ${vGap} s`);
    assert.ok(aGap <= 0.1, `largest audio gap ${aGap} s`);
    assert.equal(recErrors.trim(), '', 'the received stream decodes without errors');

    // File: the pause is cut out.
    const file = info.fileResults[0];
    assert.ok(file);
    const fileDur = Number((await ffprobe(file.location)).format.duration);
    assert.ok(Math.abs(fileDur - (wallS - PAUSE_MS / 1000)) <= 1.5, `file ${fileDur} s for ${wallS} s of wall clock minus the ${PAUSE_MS / 1000} s pause`);
    // HLS: the same media as the file, a plain continuation (checkHls: PDT deltas = EXTINF, keyframe boundaries, zero decode errors).
    const seg = info.segmentResults[0];
    assert.ok(seg);
    const pl = await checkHls({ playlistPath: join(dir, 'pl.m3u8'), segmentDurationS: 2, info: seg });
    assert.ok(!(await readFile(join(dir, 'pl.m3u8'), 'utf8')).includes('DISCONTINUITY'));
    const hlsDur = pl.segments.reduce((a, x) => a + x.duration, 0);
    assert.ok(Math.abs(hlsDur - fileDur) < 0.15, `HLS ${hlsDur} s vs file ${fileDur} s`);
    // PDT follows the media: the last segment ends the paused time before the wall clock's end.
    const last = pl.segments[pl.segments.length - 1];
    assert.ok(last);
    const lag = (Number(info.endedAt / 1_000_000n) - (last.pdt.getTime() + last.duration * 1000)) / 1000;
    console.log(`# file ${fileDur.toFixed(2)} s, HLS ${hlsDur.toFixed(2)} s in ${pl.segments.length} segments; last PDT end trails the end by ${lag.toFixed(2)} s`);
    assert.ok(lag >= PAUSE_MS / 1000 - 1, `PDT trails the wall clock by ${lag} s after a ${PAUSE_MS / 1000} s pause`);
  });
});
