/**
 * Image (thumbnail) outputs of a web egress: capture interval, size, JPEG, INDEX / TIMESTAMP /
 * NONE_OVERWRITE names, each image stored as it is taken (S3 emulator), ImagesInfo; and
 * `egress record --images DIR/ --image-interval S`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { EgressStatus, ImageFileSuffix, ImageOutput, S3Upload } from '@livekit/protocol';
import { startS3, type S3Emulator } from '../harness/storage.js';
import { ffprobe, videoStream } from '../support/media.js';
import { timestampOfName } from '../support/hls.js';
import { runCli, runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';

let tmp: { path: string; remove: () => Promise<void> };
let s3: S3Emulator;
let client: S3Client;
before(async () => {
  tmp = await tempDir();
  s3 = await startS3({ bucket: 'thumbs' });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
});
after(async () => {
  client?.destroy();
  await s3?.stop();
  await tmp?.remove();
});

async function jpegSize(path: string): Promise<{ codec: string; width: number; height: number }> {
  const v = videoStream(await ffprobe(path));
  assert.ok(v, `${path} is an image`);
  return { codec: v.codec_name ?? '', width: Number(v.width), height: Number(v.height) };
}

/**
 * Images are taken at the first frame and then every interval before the stop, so a recording of
 * D seconds has ceil(D / interval) of them: within one of D / interval. The reported times are
 * whole milliseconds and the first frame comes a few ms after the start, so a recording of just
 * over 6 s (7 images) can be reported as 5.999 s: 20 ms of slack on the duration.
 */
function assertCount(count: number, durationS: number, intervalS: number, what: string): void {
  const slack = 0.02 / intervalS;
  assert.ok(Math.abs(count - durationS / intervalS) <= 1 + slack, `${what}: ${count} images in ${durationS.toFixed(3)} s every ${intervalS} s`);
}

describe('image outputs', () => {
  it('file + two image outputs from one capture: INDEX at 640×360 every 2 s, TIMESTAMP at the encoding size every 3 s', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const dir = join(tmp.path, 'local');
      const { info } = await runWebEgress({
        request: {
          url: base + 'demo/',
          imageOutputs: [
            new ImageOutput({ captureInterval: 2, width: 640, height: 360, filenamePrefix: `${dir}/idx/thumb` }),
            new ImageOutput({ captureInterval: 3, filenamePrefix: `${dir}/ts/shot`, filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_TIMESTAMP }),
          ],
        },
        stopAfterMs: 11_000,
        tmpDir: join(tmp.path, 'work'),
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const file = info.fileResults[0];
      assert.ok(file);
      const durationS = Number(file.duration) / 1e9;
      assert.equal(info.imageResults.length, 2);
      const [idx, ts] = info.imageResults;
      assert.ok(idx && ts);
      assert.equal(idx.filenamePrefix, `${dir}/idx/thumb`);
      assert.equal(ts.filenamePrefix, `${dir}/ts/shot`);

      // the images and the manifest (`<egress_id>.json`, listing them) in each output's directory
      const idxFiles = (await readdir(join(dir, 'idx'))).filter((f) => f.endsWith('.jpeg')).sort();
      const manifest = JSON.parse(await readFile(join(dir, 'idx', `${info.egressId}.json`), 'utf8')) as { images: { filename: string }[] };
      assert.equal(manifest.images.length, Number(idx.imageCount) + Number(ts.imageCount));
      assertCount(idxFiles.length, durationS, 2, 'INDEX');
      assert.equal(Number(idx.imageCount), idxFiles.length);
      assert.deepEqual(idxFiles, Array.from({ length: idxFiles.length }, (_, i) => `thumb_${String(i).padStart(5, '0')}.jpeg`));
      for (const f of idxFiles) assert.deepEqual(await jpegSize(join(dir, 'idx', f)), { codec: 'mjpeg', width: 640, height: 360 });

      const tsFiles = (await readdir(join(dir, 'ts'))).filter((f) => f.endsWith('.jpeg')).sort();
      assertCount(tsFiles.length, durationS, 3, 'TIMESTAMP');
      assert.equal(Number(ts.imageCount), tsFiles.length);
      const start = Number(file.startedAt / 1_000_000n);
      tsFiles.forEach((f, i) => {
        assert.match(f, /^shot_\d{17}\.jpeg$/);
        // named by the wall clock of the captured frame: start + i × interval
        const at = timestampOfName(f).getTime();
        assert.ok(Math.abs(at - (start + i * 3000)) <= 2, `${f}: ${at - start} ms after the start`);
      });
      for (const f of tsFiles) assert.deepEqual(await jpegSize(join(dir, 'ts', f)), { codec: 'mjpeg', width: 1280, height: 720 });
      // the first image is the recording's first frame (ms precision)
      assert.ok(Math.abs(Number(ts.startedAt / 1_000_000n) - start) <= 1, `${ts.startedAt} vs ${start} ms`);
      assert.ok(ts.endedAt >= ts.startedAt);
    });
  });

  it('images only, NONE_OVERWRITE to S3 every second: one object, replaced as each image is taken', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const key = 'thumbs/latest.jpeg';
      const seen = new Set<string>();
      let polling = true;
      let stoppedAt = 0;
      const poller = (async () => {
        while (polling) {
          const res = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket })).catch(() => null);
          for (const o of res?.Contents ?? []) if (o.Key === key && o.ETag && (stoppedAt === 0 || Date.now() < stoppedAt)) seen.add(o.ETag);
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const t0 = Date.now();
      const { info } = await runWebEgress({
        request: {
          url: base + 'demo/',
          imageOutputs: [
            new ImageOutput({
              captureInterval: 1,
              width: 320,
              height: 180,
              filenamePrefix: 'thumbs/latest',
              filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_NONE_OVERWRITE,
              output: { case: 's3', value: new S3Upload({ accessKey: s3.accessKey, secret: s3.secret, region: 'us-east-1', endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true }) },
            }),
          ],
        },
        stopAfterMs: 6000,
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work2'),
        onActive: (c) => c.once('update', () => (stoppedAt = Date.now())),
      });
      polling = false;
      await poller;
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(info.fileResults.length, 0);
      const img = info.imageResults[0];
      assert.ok(img);
      const durationS = (Number(info.endedAt / 1_000_000n) - Number(img.startedAt / 1_000_000n)) / 1000;
      assert.ok(durationS > 4 && durationS < (Date.now() - t0) / 1000, `${durationS} s`);
      assertCount(Number(img.imageCount), durationS, 1, 'NONE_OVERWRITE');
      const keys = (await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents?.map((o) => o.Key);
      assert.deepEqual(keys, [`thumbs/${info.egressId}.json`, key]);
      // several different images were stored under the one key while recording
      assert.ok(seen.size >= 3, `${seen.size} versions of ${key} seen while recording`);
      const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
      assert.equal(res.ContentType, 'image/jpeg');
      const local = join(tmp.path, 'latest.jpeg');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(local, Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()));
      assert.deepEqual(await jpegSize(local), { codec: 'mjpeg', width: 320, height: 180 });
    });
  });

  it('egress record --images DIR/ --image-interval 2 stores DIR/image_NNNNN.jpeg next to the MP4', async () => {
    const cwd = join(tmp.path, 'cli');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(cwd);
    const { code, last, stderr } = await runCli(['record', '--duration', '8', '--out', 'take.mp4', '--images', 'thumbs/', '--image-interval', '2', '--quiet'], cwd);
    assert.equal(code, 0, stderr.slice(-1500));
    const img = (last['imageResults'] as Record<string, string>[])[0];
    assert.ok(img);
    assert.equal(img['filenamePrefix'], 'thumbs/image');
    const files = (await readdir(join(cwd, 'thumbs'))).filter((f) => f.endsWith('.jpeg')).sort();
    assert.equal(Number(img['imageCount']), files.length);
    assertCount(files.length, 8, 2, 'CLI');
    assert.equal(files[0], 'image_00000.jpeg');
    assert.deepEqual(await jpegSize(join(cwd, 'thumbs', files[0] ?? '')), { codec: 'mjpeg', width: 1280, height: 720 });
  });
});
