/**
 * The queued mode (HLS segments, thumbnails): files fed as they are written upload in order and are
 * deleted once stored; a slow store makes the queue grow to its limit and then fail with the
 * original's text, the files that were not uploaded staying on disk.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { StoragePlan } from '../../main/contracts/pipeline.js';
import { s3ConfigSchema } from '../../main/contracts/storage.js';
import { UploadManager } from '../../main/upload/manager.js';
import { imageQueueCapacity, segmentQueueCapacity, type QueueItem } from '../../main/upload/queue.js';
import type { EgressError } from '../../main/contracts/errors.js';
import { makeTestFile, startFaultProxy, startS3, type FaultProxy, type S3Emulator } from '../harness/storage.js';
import { sha256File, sha256Stream } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('queue capacity formulas (max_upload_queue minutes)', () => {
  assert.equal(segmentQueueCapacity(60, 4), 900);
  assert.equal(segmentQueueCapacity(60, 6), 600);
  assert.equal(imageQueueCapacity(60, 10), 360);
  assert.equal(imageQueueCapacity(1, 30), 4);
  assert.equal(imageQueueCapacity(0, 10), 4);
});

describe('upload queue against s3rver', { concurrency: false }, () => {
  let dir: string;
  let s3: S3Emulator;
  let px: FaultProxy;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upload-queue-'));
    s3 = await startS3();
    px = await startFaultProxy(s3.port);
  });
  after(async () => {
    await px?.stop();
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const plan = (): StoragePlan => ({
    target: { kind: 's3', s3: s3ConfigSchema.parse({ access_key: s3.accessKey, secret: s3.secret, endpoint: px.endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true, max_retries: 2, min_retry_delay: '50ms', max_retry_delay: '200ms' }) },
    prefix: 'live',
    generatePresignedUrl: false,
  });

  test('segments fed as they are written upload in order, are deleted after upload, byte-identical', async () => {
    await px.setMode({ kind: 'pass' });
    const mgr = new UploadManager({ egressId: 'EG_q', primary: plan() });
    const delivered: QueueItem[] = [];
    const q = mgr.sink('segments').createQueue({ kind: 'segment', capacity: segmentQueueCapacity(60, 2), concurrency: 3, onUploaded: (item) => void delivered.push(item) });
    const hashes = new Map<string, string>();
    for (let i = 0; i < 10; i++) {
      const name = `seg_${String(i).padStart(5, '0')}.ts`;
      // sizes vary so that later segments can finish before earlier ones
      const p = await makeTestFile(dir, name, (i % 3 === 0 ? 3 : 1) * 256 * 1024, i + 1);
      hashes.set(name, await sha256File(p));
      q.enqueue(p, `pl/${name}`, 'ts');
      await sleep(30);
    }
    await q.drain();
    assert.deepEqual(delivered.map((d) => d.seq), [...Array(10).keys()]);
    assert.equal(q.uploaded.count, 10);
    const c = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
    for (const [name, h] of hashes) {
      assert.equal(existsSync(path.join(dir, name)), false, `${name} should be deleted after upload`);
      const o = await c.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `live/pl/${name}` }));
      assert.equal(o.ContentType, 'video/mp2t');
      assert.equal(await sha256Stream(o.Body as Readable), h);
    }
    c.destroy();
    assert.deepEqual(mgr.leftOnDisk, []);
  });

  test('slow store: segment queue fills up → "<segment> upload failed: segment upload job queue is full"', async () => {
    await px.setMode({ kind: 'slow', bytesPerSec: 64 * 1024 });
    const mgr = new UploadManager({ egressId: 'EG_slow', primary: plan() });
    const errors: EgressError[] = [];
    const capacity = segmentQueueCapacity(0.1, 2); // 6 s of 2 s segments = 3 jobs
    assert.equal(capacity, 3);
    const q = mgr.sink('segments').createQueue({ kind: 'segment', capacity, concurrency: 1, onError: (e) => errors.push(e) });
    let thrown: unknown = null;
    const files: string[] = [];
    for (let i = 0; i < 20 && !thrown; i++) {
      const p = await makeTestFile(dir, `slow_${String(i).padStart(5, '0')}.ts`, 256 * 1024, i + 100);
      files.push(p);
      try {
        q.enqueue(p, path.basename(p), 'ts');
      } catch (err) {
        thrown = err;
      }
      await sleep(50);
    }
    assert.ok(thrown instanceof Error, 'queue never filled up');
    assert.equal(thrown.message, 'slow_00004.ts upload failed: segment upload job queue is full');
    assert.equal(errors.length, 1);
    assert.equal(errors[0], thrown);
    await assert.rejects(q.drain(), (e: unknown) => e === thrown);
    // nothing silently dropped: the overflowing and the waiting segments are still on disk and reported
    for (const p of files.slice(1)) assert.ok(existsSync(p), `${p} should still be on disk`);
    for (const p of files.slice(1)) assert.ok(mgr.leftOnDisk.includes(p), `${p} should be reported`);
    assert.throws(() => q.enqueue(files[0] as string, 'again.ts', 'ts'), (e: unknown) => e === thrown);
    await px.setMode({ kind: 'pass' });
  });

  test('slow store: image queue fills up → "image upload queue full (<n> pending): storage cannot keep up"', async () => {
    await px.setMode({ kind: 'slow', bytesPerSec: 64 * 1024 });
    const mgr = new UploadManager({ egressId: 'EG_img', primary: plan() });
    const capacity = imageQueueCapacity(0.01, 5); // max(0, 4) = 4
    const q = mgr.sink('images').createQueue({ kind: 'image', capacity, concurrency: 1 });
    let thrown: unknown = null;
    for (let i = 0; i < 20 && !thrown; i++) {
      const p = await makeTestFile(dir, `img_${String(i).padStart(5, '0')}.jpeg`, 256 * 1024, i + 200);
      try {
        q.enqueue(p, path.basename(p), 'jpeg');
      } catch (err) {
        thrown = err;
      }
      await sleep(50);
    }
    assert.ok(thrown instanceof Error, 'queue never filled up');
    assert.equal(thrown.message, 'image upload queue full (4 pending): storage cannot keep up');
    assert.equal((thrown as EgressError).httpStatus, 500);
    assert.ok(existsSync(path.join(dir, 'img_00005.jpeg')));
    await assert.rejects(q.drain());
    await px.setMode({ kind: 'pass' });
  });

  test('an upload failure fails the queue; the failed file stays on disk', async () => {
    await px.setMode({ kind: 'forbidden' });
    const mgr = new UploadManager({ egressId: 'EG_qf', primary: plan() });
    const q = mgr.sink('segments').createQueue({ kind: 'segment', capacity: 10 });
    const p = await makeTestFile(dir, 'fail_00000.ts', 64 * 1024, 300);
    q.enqueue(p, 'fail_00000.ts', 'ts');
    await assert.rejects(q.drain(), /^Error: S3 upload failed: Access Denied$|S3 upload failed: Access Denied/);
    assert.ok(existsSync(p));
    assert.deepEqual(mgr.leftOnDisk, [p]);
    await px.setMode({ kind: 'pass' });
  });
});
