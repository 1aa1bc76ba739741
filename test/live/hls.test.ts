/**
 * HLS segments from a web egress, next to the MP4 from the same encode: playlist format, segment
 * boundaries on keyframes, A/V sync, and segments reaching the S3 emulator in order while recording
 * with each playlist entry only after its segment's upload. Also through `egress record --hls`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { EgressStatus, S3Upload, SegmentedFileOutput, SegmentedFileSuffix } from '@livekit/protocol';
import { startS3, type S3Emulator } from '../harness/storage.js';
import { ffprobe, makeFlashBeepFile, measureAvSync } from '../support/media.js';
import { checkHls, parsePlaylist } from '../support/hls.js';
import { FIXTURE_PAGES_DIR, runCli, runWebEgress, tempDir, withServer } from '../support/web-egress.js';

let tmp: { path: string; remove: () => Promise<void> };
let s3: S3Emulator;
let client: S3Client;

before(async () => {
  tmp = await tempDir();
  s3 = await startS3({ bucket: 'hls' });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
  await mkdir(join(tmp.path, 'page'));
  await copyFile(join(FIXTURE_PAGES_DIR, 'media-avsync/index.html'), join(tmp.path, 'page/index.html'));
  await makeFlashBeepFile(join(tmp.path, 'page/av.mp4'), 40);
});
after(async () => {
  client?.destroy();
  await s3?.stop();
  await tmp?.remove();
});

async function listKeys(): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
  return (res.Contents ?? []).map((o) => o.Key ?? '');
}

async function download(key: string, to: string): Promise<void> {
  const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  await mkdir(dirname(to), { recursive: true });
  await writeFile(to, Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()));
}

describe('HLS segments', () => {
  it('file + HLS from one encode to S3: playlists, keyframe boundaries, A/V, segments uploaded in order while recording', async () => {
    await withServer(join(tmp.path, 'page'), async (base) => {
      const segments = new SegmentedFileOutput({
        filenamePrefix: 'rec/seg',
        playlistName: 'rec/playlist.m3u8',
        livePlaylistName: 'rec/live.m3u8',
        segmentDuration: 2,
        output: { case: 's3', value: new S3Upload({ accessKey: s3.accessKey, secret: s3.secret, region: 'us-east-1', endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true }) },
      });
      // Watch the bucket while recording: when each object first appears, and whether the live
      // playlist ever lists a segment that is not stored yet.
      const firstSeen = new Map<string, number>();
      const liveViolations: string[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const keys = await listKeys().catch(() => [] as string[]);
          const t = Date.now();
          for (const k of keys) if (!firstSeen.has(k)) firstSeen.set(k, t);
          if (keys.includes('rec/live.m3u8')) {
            // s3rver stores an object while it is being read: a read racing a PUT of the playlist can
            // come back cut short or be aborted (ECONNRESET, seen once in a clean-clone run), and then
            // tells nothing (it is read again 250 ms later)
            const text = await client
              .send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'rec/live.m3u8' }))
              .then((res) => (res.Body as { transformToString(): Promise<string> }).transformToString())
              .catch(() => '');
            if (text.startsWith('#EXTM3U\n') && /#EXT-X-TARGETDURATION/.test(text)) {
              const live = parsePlaylist(text);
              for (const s of live.segments) if (!keys.includes(`rec/${s.uri}`)) liveViolations.push(s.uri);
            }
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      let stoppedAt = 0;
      const { info } = await runWebEgress({
        request: { url: base, segmentOutputs: [segments] },
        // (timed from the recording start: ≥ 10 flash/beep pairs of the page's file need 16 s)
        stopAfterMs: 16_000,
        tmpDir: join(tmp.path, 'work'),
        onActive: (c) => c.once('update', () => (stoppedAt = Date.now())),
      });
      polling = false;
      await poller;
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      stoppedAt ||= Number(info.endedAt / 1_000_000n);
      const seg = info.segmentResults[0];
      assert.ok(seg);
      assert.equal(seg.playlistName, 'rec/playlist.m3u8');
      assert.equal(seg.livePlaylistName, 'rec/live.m3u8');
      assert.match(seg.playlistLocation, /^https?:\/\/\S+\/rec\/playlist\.m3u8$/);
      assert.match(seg.livePlaylistLocation, /^https?:\/\/\S+\/rec\/live\.m3u8$/);
      assert.equal(info.result.case, undefined, 'two output kinds: no deprecated single result');

      const keys = (await listKeys()).sort();
      const segKeys = keys.filter((k) => k.endsWith('.ts'));
      assert.deepEqual(segKeys, Array.from({ length: segKeys.length }, (_, i) => `rec/seg_${String(i).padStart(5, '0')}.ts`));
      const local = join(tmp.path, 'dl');
      for (const k of keys) await download(k, join(local, k));
      const pl = await checkHls({ playlistPath: join(local, 'rec/playlist.m3u8'), livePlaylistPath: join(local, 'rec/live.m3u8'), segmentDurationS: 2, info: seg });
      assert.ok(pl.segments.length >= 6, `${pl.segments.length} segments`);
      // The manifest next to the playlist lists the file and every stored segment, in order.
      const { readFile } = await import('node:fs/promises');
      const manifest = JSON.parse(await readFile(join(local, `rec/${info.egressId}.json`), 'utf8')) as { files: { filename: string }[]; playlists: { location: string; segments: { filename: string; location: string }[] }[] };
      assert.equal(manifest.files.length, 1);
      assert.equal(manifest.playlists[0]?.location, seg.playlistLocation);
      assert.deepEqual(
        manifest.playlists[0]?.segments.map((x) => x.filename),
        pl.segments.map((x) => `rec/${x.uri}`),
      );

      // Uploaded while recording, in order; the live playlist never listed a segment not yet stored.
      const times = segKeys.map((k) => firstSeen.get(k) ?? Infinity);
      for (let i = 1; i < times.length; i++) assert.ok((times[i] as number) >= (times[i - 1] as number), `segment ${i} appeared before segment ${i - 1}`);
      // Stored while recording, not at the end (how many depends on the machine's load: not timed).
      const beforeStop = times.filter((t) => t < stoppedAt).length;
      process.stdout.write(`# ${beforeStop} of ${segKeys.length} segments stored before the stop\n`);
      assert.ok(beforeStop >= 1, `${beforeStop} of ${segKeys.length} segments stored before the stop`);
      assert.deepEqual(liveViolations, []);

      // One encode, two outputs: the MP4 lasts as long as the HLS.
      const file = info.fileResults[0];
      assert.ok(file);
      const fileDur = Number((await ffprobe(file.location)).format.duration);
      const hlsDur = pl.segments.reduce((a, s) => a + s.duration, 0);
      assert.ok(Math.abs(fileDur - hlsDur) < 0.15, `file ${fileDur} s vs HLS ${hlsDur} s`);

      const r = await measureAvSync(join(local, 'rec/playlist.m3u8'));
      const summary = `pairs=${r.pairs} p50=${(r.p50 * 1000).toFixed(1)} ms p80=${(r.p80 * 1000).toFixed(1)} ms max=${(r.max * 1000).toFixed(1)} ms`;
      process.stdout.write(`# hls avsync: ${summary}\n`);
      assert.ok(r.pairs >= 10, summary);
      assert.ok(r.p80 <= 0.04, `HLS A/V offset p80 ≤ 40 ms (${summary})`);
    });
  });

  it('HLS only, TIMESTAMP names: each name is its PROGRAM-DATE-TIME; SegmentsInfo is the deprecated result too', async () => {
    await withServer(join(tmp.path, 'page'), async (base) => {
      const out = join(tmp.path, 'ts-only');
      const segments = new SegmentedFileOutput({ filenamePrefix: `${out}/seg`, playlistName: 'pl.m3u8', segmentDuration: 3, filenameSuffix: SegmentedFileSuffix.TIMESTAMP });
      const { info } = await runWebEgress({ request: { url: base, segmentOutputs: [segments] }, stopAfterMs: 8_000, tmpDir: join(tmp.path, 'work2'), noDefaultFile: true });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(info.fileResults.length, 0);
      const seg = info.segmentResults[0];
      assert.ok(seg);
      assert.equal(info.result.case, 'segments');
      assert.equal(seg.playlistName, `${out}/pl.m3u8`);
      assert.equal(seg.livePlaylistName, '');
      await checkHls({ playlistPath: join(out, 'pl.m3u8'), segmentDurationS: 3, timestampNames: true, info: seg });
    });
  });

  it('GStreamer killed mid-recording: FAILED, yet every segment recorded is stored and the playlist ends and plays', async () => {
    await withServer(join(tmp.path, 'page'), async (base) => {
      const out = join(tmp.path, 'killed');
      const segments = new SegmentedFileOutput({ filenamePrefix: `${out}/seg`, playlistName: 'pl.m3u8', livePlaylistName: 'live.m3u8', segmentDuration: 2 });
      const { info } = await runWebEgress({
        request: { url: base, segmentOutputs: [segments] },
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work3'),
        onActive: (c) => {
          // gst-launch is the last process of a web egress without a stream output
          setTimeout(() => process.kill(c.pids()[c.pids().length - 1] as number, 'SIGKILL'), 7000);
        },
      });
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.match(info.error, /gst-launch killed by SIGKILL|pipeline/);
      const seg = info.segmentResults[0];
      assert.ok(seg);
      const pl = await checkHls({ playlistPath: join(out, 'pl.m3u8'), livePlaylistPath: join(out, 'live.m3u8'), segmentDurationS: 2, info: seg });
      assert.ok(pl.segments.length >= 3, `${pl.segments.length} segments kept`);
    });
  });

  it('egress record --hls DIR/ writes playlist, live playlist and segments next to the MP4', async () => {
    const cwd = join(tmp.path, 'cli');
    await mkdir(cwd);
    const { code, last, stderr } = await runCli(['record', '--duration', '9', '--out', 'take.mp4', '--hls', 'live/', '--segment-duration', '2', '--quiet'], cwd);
    assert.equal(code, 0, stderr.slice(-1500));
    assert.equal(last['status'], 'EGRESS_COMPLETE');
    const seg = (last['segmentResults'] as Record<string, unknown>[])[0];
    assert.ok(seg);
    assert.equal(seg['playlistName'], 'live/playlist.m3u8');
    assert.equal(seg['livePlaylistName'], 'live/live.m3u8');
    const { SegmentsInfo } = await import('@livekit/protocol');
    const pl = await checkHls({ playlistPath: join(cwd, 'live/playlist.m3u8'), livePlaylistPath: join(cwd, 'live/live.m3u8'), segmentDurationS: 2, info: SegmentsInfo.fromJson(seg as never) });
    assert.ok(pl.segments.length >= 5);
    assert.equal(pl.segments[0]?.uri, 'playlist_00000.ts');
    assert.ok(Number((await ffprobe(join(cwd, 'take.mp4'))).format.duration) > 8);
  });
});
