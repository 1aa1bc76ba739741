/**
 * RTMP stream output against a real RTMP server (nginx + libnginx-mod-rtmp on a free loopback
 * port): several URLs per output, a bad URL failing alone, UpdateStream add/remove while recording
 * without restarting the encoder, keyframe interval on the received stream, redacted URLs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EgressStatus, EncodingOptions, StreamInfo_Status, StreamOutput, StreamProtocol, type EgressInfo, type StreamInfo } from '@livekit/protocol';
import { freePort } from '../harness/storage.js';
import { rtmpServerAvailable, startRtmpServer, type RtmpServer } from '../harness/rtmp.js';
import { srtListenerAvailable, startSrtListener } from '../harness/srt.js';
import { ffprobe, videoStream, audioStream } from '../support/media.js';
import { runCli, runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import type { WebEgressController } from '../../main/egress/web-egress.js';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let tmp: { path: string; remove: () => Promise<void> };
let rtmp: RtmpServer;
before(async () => {
  tmp = await tempDir();
  if (rtmpServerAvailable()) rtmp = await startRtmpServer();
});
after(async () => {
  await rtmp?.stop();
  await tmp?.remove();
});

async function keyframeTimes(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path], { maxBuffer: 1 << 26 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => l.split(','))
    .filter(([, f]) => (f ?? '').includes('K'))
    .map(([t]) => Number(t));
}

function byUrl(info: EgressInfo, url: string): StreamInfo {
  const s = info.streamResults.find((x) => x.url === url);
  assert.ok(s, `${url} in ${info.streamResults.map((x) => x.url).join(', ')}`);
  return s;
}

async function until(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('RTMP stream output', { skip: rtmpServerAvailable() ? false : 'nginx + libnginx-mod-rtmp not installed (scripts/setup.sh)' }, () => {
  it('file + RTMP [good1, bad1]; add [good2, bad2]; remove good1; stop: statuses, durations, redacted URLs, 2 s keyframes on the received stream', async () => {
    const closedPort = await freePort();
    const good1 = `${rtmp.liveUrl}good1streamkey`;
    const good2 = `${rtmp.liveUrl}good2streamkey`;
    const bad1 = `rtmp://127.0.0.1:${closedPort}/live/badstreamkey`;
    const bad2 = `rtmp://127.0.0.1:${rtmp.port}/wrong/stream`;
    // the original's redaction: first and last k characters, k = 3 from 9 characters, 2 from 6
    const red = (u: string): string => u.replace(/\/([^/]+)$/, (_, key: string) => {
      const k = key.length >= 9 ? 3 : key.length >= 6 ? 2 : 1;
      return `/{${key.slice(0, k)}...${key.slice(-k)}}`;
    });
    let controller: WebEgressController | null = null;
    let activeAt = 0;
    let stoppedAt = 0;
    const flow = (async () => {
      await until('ACTIVE', () => controller?.info.status === EgressStatus.EGRESS_ACTIVE);
      activeAt = Date.now();
      const c = controller as unknown as WebEgressController;
      await until('bad1 FAILED', () => byUrl(c.info, red(bad1)).status === StreamInfo_Status.FAILED);
      assert.equal(byUrl(c.info, red(good1)).status, StreamInfo_Status.ACTIVE);
      await sleep(4000);
      // the live stream read back from the server
      const live = await ffprobe(good1);
      assert.equal(videoStream(live)?.codec_name, 'h264');
      assert.equal(Number(videoStream(live)?.width), 1280);
      assert.equal(audioStream(live)?.codec_name, 'aac');
      c.updateStream([good2, bad2], []);
      await until('bad2 FAILED', () => byUrl(c.info, red(bad2)).status === StreamInfo_Status.FAILED);
      await sleep(6000);
      assert.equal(byUrl(c.info, red(good1)).status, StreamInfo_Status.ACTIVE);
      assert.equal(byUrl(c.info, red(good2)).status, StreamInfo_Status.ACTIVE);
      assert.throws(() => c.updateStream([], ['rtmp://127.0.0.1/live/unknown']), { message: 'stream rtmp://127.0.0.1/live/unknown not found' });
      c.updateStream([], [good1]);
      assert.equal(byUrl(c.info, red(good1)).status, StreamInfo_Status.FINISHED);
      await sleep(5000);
      stoppedAt = Date.now();
      c.stop();
    })();
    const result = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: {
          url: base + 'demo/',
          options: { case: 'advanced', value: new EncodingOptions({ width: 1280, height: 720, framerate: 30, keyFrameInterval: 2 }) },
          streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [good1, bad1] })],
        },
        tmpDir: join(tmp.path, 'work'),
        timeoutMs: 90_000,
        onActive: (c) => (controller = c),
      }),
    );
    controller ??= result.controller;
    await flow;
    const { info } = result;
    assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
    assert.equal(info.error, '');
    assert.equal(info.streamResults.length, 4);
    for (const s of info.streamResults) {
      assert.ok(s.startedAt > 0n && s.endedAt >= s.startedAt, s.url);
      assert.equal(s.status === StreamInfo_Status.FAILED, s.error !== '', `${s.url}: FAILED ⇔ error (${s.error})`);
    }
    const g1 = byUrl(info, red(good1));
    const g2 = byUrl(info, red(good2));
    assert.equal(g1.status, StreamInfo_Status.FINISHED);
    assert.equal(g2.status, StreamInfo_Status.FINISHED);
    assert.ok(Number(g1.duration) / 1e9 > 12, `good1 ${Number(g1.duration) / 1e9} s`);
    assert.ok(Number(g2.duration) / 1e9 > 8, `good2 ${Number(g2.duration) / 1e9} s`);
    assert.equal(byUrl(info, red(bad1)).status, StreamInfo_Status.FAILED);
    assert.equal(byUrl(info, `rtmp://127.0.0.1:${rtmp.port}/wrong/{st...am}`).status, StreamInfo_Status.FAILED, 'a 6-character key is redacted as {st...am}');
    // No stream key anywhere in what is reported.
    const json = JSON.stringify(info.toJson());
    for (const key of ['good1streamkey', 'good2streamkey', 'badstreamkey']) assert.ok(!json.includes(key), `${key} leaked`);
    assert.ok(json.includes('/live/{goo...key}'));

    // One encode kept running: the file covers the whole recording.
    const file = info.fileResults[0];
    assert.ok(file);
    const fileDur = Number((await ffprobe(file.location)).format.duration);
    // (the recording starts before ACTIVE is seen, and ends at the stop)
    assert.ok(fileDur >= (stoppedAt - activeAt) / 1000 - 0.5, `file ${fileDur} s, ACTIVE → stop ${(stoppedAt - activeAt) / 1000} s`);

    // What the server received: good1 and good2 recordings, keyframes 2.0 s ± 20 ms apart.
    for (const key of ['good1streamkey', 'good2streamkey']) {
      const rec = join(rtmp.recordDir, `${key}.flv`);
      await until(`${key}.flv`, () => existsSync(rec), 10_000);
      const p = await ffprobe(rec);
      assert.equal(videoStream(p)?.codec_name, 'h264');
      const k = await keyframeTimes(rec);
      assert.ok(k.length >= 3, `${key}: ${k.length} keyframes`);
      for (let i = 1; i < k.length; i++) assert.ok(Math.abs((k[i] as number) - (k[i - 1] as number) - 2) <= 0.02, `${key}: keyframes at ${k.join(', ')}`);
    }
    assert.ok(!existsSync(join(rtmp.recordDir, 'badstreamkey.flv')));
  });

  it('only a bad URL: the stream FAILED and the egress ends FAILED with its error', async () => {
    const closedPort = await freePort();
    const { info } = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: { url: base + 'demo/', streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [`rtmp://127.0.0.1:${closedPort}/live/streamkey`] })] },
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work2'),
        timeoutMs: 60_000,
      }),
    );
    assert.equal(info.status, EgressStatus.EGRESS_FAILED);
    assert.notEqual(info.error, '');
    const s = info.streamResults[0];
    assert.ok(s);
    assert.equal(s.status, StreamInfo_Status.FAILED);
    assert.notEqual(s.error, '');
    assert.equal(s.url, `rtmp://127.0.0.1:${closedPort}/live/{str...key}`);
  });

  it('egress record --rtmp URL --rtmp URL publishes to both while recording the file', async () => {
    const cwd = join(tmp.path, 'cli');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(cwd);
    const a = `${rtmp.liveUrl}cliA123456`;
    const b = `${rtmp.liveUrl}cliB123456`;
    const { code, last, stderr } = await runCli(['record', '--duration', '8', '--out', 'take.mp4', '--rtmp', a, '--rtmp', b, '--quiet'], cwd);
    assert.equal(code, 0, stderr.slice(-1500));
    const streams = last['streamResults'] as { url: string; status?: string }[];
    assert.deepEqual(
      streams.map((s) => [s.url, s.status]),
      [
        [`${rtmp.liveUrl}{cli...456}`, 'FINISHED'],
        [`${rtmp.liveUrl}{cli...456}`, 'FINISHED'],
      ],
    );
    assert.ok(!stderr.includes('cliA123456') && !stderr.includes('cliB123456'), 'no stream key in the log');
    for (const key of ['cliA123456', 'cliB123456']) {
      const rec = join(rtmp.recordDir, `${key}.flv`);
      await until(`${key}.flv`, () => existsSync(rec), 10_000);
      assert.ok(Number((await ffprobe(rec)).format.duration) > 3);
    }
  });
});

describe('SRT stream output', { skip: srtListenerAvailable() ? false : 'srt-tools not installed (scripts/setup.sh --test)' }, () => {
  it('web, key_frame_interval 2, SRT [good, bad]: bad FAILED alone, good received (H.264 + AAC, 2 s keyframes), URLs verbatim; only a bad SRT URL → FAILED', async () => {
    const received = join(tmp.path, 'srt-received.ts');
    const srt = await startSrtListener(received);
    try {
      const good = `${srt.url}?streamid=publish:srtkey&pkt_size=1316`;
      const bad = `srt://127.0.0.1:${await freePort()}?streamid=publish:srtkey&pkt_size=1316`;
      const { info } = await withServer(TEMPLATES_DIR, (base) =>
        runWebEgress({
          request: {
            url: base + 'demo/',
            options: { case: 'advanced', value: new EncodingOptions({ width: 1280, height: 720, framerate: 30, keyFrameInterval: 2 }) },
            streamOutputs: [new StreamOutput({ protocol: StreamProtocol.SRT, urls: [good, bad] })],
          },
          stopAfterMs: 10_000,
          tmpDir: join(tmp.path, 'work-srt'),
          timeoutMs: 60_000,
        }),
      );
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(byUrl(info, good).status, StreamInfo_Status.FINISHED);
      assert.equal(byUrl(info, bad).status, StreamInfo_Status.FAILED);
      assert.notEqual(byUrl(info, bad).error, '');
      const p = await ffprobe(received);
      assert.equal(videoStream(p)?.codec_name, 'h264');
      assert.equal(audioStream(p)?.codec_name, 'aac');
      assert.ok(Number(p.format.duration) > 6, `received ${p.format.duration} s`);
      const k = await keyframeTimes(received);
      assert.ok(k.length >= 3, `${k.length} keyframes`);
      for (let i = 1; i < k.length; i++) assert.ok(Math.abs((k[i] as number) - (k[i - 1] as number) - 2) <= 0.02, `keyframes at ${k.join(', ')}`);
      assert.ok(Number((await ffprobe(info.fileResults[0]?.location ?? '')).format.duration) > 9);
    } finally {
      await srt.stop();
    }
    const { info } = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: { url: base + 'demo/', streamOutputs: [new StreamOutput({ protocol: StreamProtocol.SRT, urls: [`srt://127.0.0.1:${srt.port}?streamid=publish:gone`] })] },
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work-srt2'),
        timeoutMs: 60_000,
      }),
    );
    assert.equal(info.status, EgressStatus.EGRESS_FAILED);
    assert.equal(info.streamResults[0]?.status, StreamInfo_Status.FAILED);
  });
});
