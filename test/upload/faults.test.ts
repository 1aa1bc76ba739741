/**
 * Faults between the uploader and real emulators (through a fault proxy): 403, storage down,
 * storage dying half-way through a multipart upload → backup used; no backup → the original's
 * error text and the file kept on disk; both failing → `primary: …\nbackup: …`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { Registry } from 'prom-client';
import type { StoragePlan } from '../../main/contracts/pipeline.js';
import { s3ConfigSchema } from '../../main/contracts/storage.js';
import { UploadManager } from '../../main/upload/manager.js';
import { UploadError } from '../../main/upload/errors.js';
import {
  makeTestFile,
  startAliOss,
  startAzurite,
  startFakeGcs,
  startFaultProxy,
  startS3,
  type AliOssEmulator,
  type AzureEmulator,
  type FaultProxy,
  type GcsEmulator,
  type S3Emulator,
} from '../harness/storage.js';
import { MB, sha256File, sha256Stream, sha256Url } from './helpers.js';

const SIZE = 24 * MB;
const FAST = { maxRetryDelayMs: 200, partSizeBytes: 5 * MB, parallelParts: 2 } as const;

describe('upload faults and backup storage', { concurrency: false }, () => {
  let dir: string;
  let s3: S3Emulator;
  let az: AzureEmulator;
  let gcs: GcsEmulator;
  let ali: AliOssEmulator;
  const proxies: FaultProxy[] = [];
  let seq = 0;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upload-faults-'));
    [s3, az, gcs, ali] = await Promise.all([startS3(), startAzurite(), startFakeGcs(), startAliOss()]);
    await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.account, az.key)).getContainerClient('rec').create();
  });
  after(async () => {
    await Promise.allSettled(proxies.map((p) => p.stop()));
    await Promise.allSettled([s3?.stop(), az?.stop(), gcs?.stop(), ali?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const proxy = async (port: number): Promise<FaultProxy> => {
    const p = await startFaultProxy(port);
    proxies.push(p);
    return p;
  };
  const file = async (size = SIZE): Promise<{ p: string; hash: string }> => {
    const p = await makeTestFile(dir, `f${++seq}.mp4`, size, seq);
    return { p, hash: await sha256File(p) };
  };
  const s3Plan = (endpoint: string): StoragePlan => ({
    target: { kind: 's3', s3: s3ConfigSchema.parse({ access_key: s3.accessKey, secret: s3.secret, endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true, max_retries: 2, min_retry_delay: '50ms', max_retry_delay: '200ms' }) },
    prefix: '',
    generatePresignedUrl: false,
  });
  const azPlan = (): StoragePlan => ({ target: { kind: 'azure', azure: { account_name: az.account, account_key: az.key, container_name: 'rec' } }, prefix: '', generatePresignedUrl: false });
  const gcsPlan = (): StoragePlan => ({ target: { kind: 'gcp', gcp: { credentials_json: '', bucket: gcs.bucket } }, prefix: '', generatePresignedUrl: false });
  const aliPlan = (endpoint: string): StoragePlan => ({ target: { kind: 'alioss', alioss: { access_key: ali.accessKey, secret: ali.secret, region: '', endpoint, bucket: ali.bucket } }, prefix: '', generatePresignedUrl: false });
  const s3Hash = async (key: string): Promise<string> => {
    const c = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
    const o = await c.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const h = await sha256Stream(o.Body as Readable);
    c.destroy();
    return h;
  };
  const azHash = async (key: string): Promise<string> => {
    const dl = await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.account, az.key)).getContainerClient('rec').getBlobClient(key).download();
    return sha256Stream(dl.readableStreamBody as Readable);
  };

  test('S3 answers 403 → backup (Azure) used, later uploads of the sink go straight to backup', async () => {
    const px = await proxy(s3.port);
    await px.setMode({ kind: 'forbidden' });
    const registry = new Registry();
    const mgr = new UploadManager({ egressId: 'EG_403', primary: s3Plan(px.endpoint), backup: azPlan(), registry, uploaderOptions: FAST, backupUploaderOptions: { ...FAST, azureServiceUrl: az.serviceUrl } });
    const f = await file();
    const sink = mgr.sink('file');
    const r = await sink.upload(f.p, 'a/403.mp4', 'mp4');
    assert.equal(r.backup, true);
    assert.equal(mgr.backupStorageUsed, true);
    assert.equal(r.location, `https://${az.account}.blob.core.windows.net/rec/a/403.mp4`);
    assert.equal(await azHash('a/403.mp4'), f.hash);
    await stat(f.p);
    const metrics = await registry.metrics();
    assert.match(metrics, /livekit_egress_backup_storage_writes\{output_type="mp4"\} 1/);
    assert.match(metrics, /livekit_egress_pipeline_uploads\{type="mp4",status="4xx",custom_endpoint="true"\} 1/);
    assert.match(metrics, /livekit_egress_pipline_upload_response_time_ms_bucket/);
    // primary healthy again: the sink still goes to backup, without touching primary
    await px.setMode({ kind: 'pass' });
    const g = await file(1 * MB);
    const r2 = await sink.upload(g.p, 'a/second.mp4', 'mp4');
    assert.equal(r2.backup, true);
    assert.equal(px.forwarded, 0);
    // another sink of the same egress still tries primary first
    const r3 = await mgr.sink('images').upload(g.p, 'a/other.mp4', 'mp4');
    assert.equal(r3.backup, false);
    assert.equal(await s3Hash('a/other.mp4'), g.hash);
  });

  test('Azure dies half-way through a block upload → backup (Ali OSS) complete and byte-identical', async () => {
    const px = await proxy(az.port);
    await px.setMode({ kind: 'die-after', bytes: 10 * MB });
    const mgr = new UploadManager({
      egressId: 'EG_az_die',
      primary: azPlan(),
      backup: aliPlan(ali.endpoint),
      uploaderOptions: { ...FAST, azureServiceUrl: `${px.endpoint}/${az.account}` },
      backupUploaderOptions: FAST,
    });
    const f = await file();
    const r = await mgr.sink('file').upload(f.p, 'az-die.mp4', 'mp4');
    await px.died();
    assert.ok(px.forwarded >= 10 * MB);
    assert.equal(r.backup, true);
    assert.equal(mgr.backupStorageUsed, true);
    assert.equal(r.location, `https://${ali.bucket}.127.0.0.1:${ali.port}/az-die.mp4`);
    assert.equal(await sha256File(ali.objectPath('az-die.mp4')), f.hash);
  });

  test('S3 dies half-way through a multipart upload → backup (GCS) complete and byte-identical', async () => {
    const px = await proxy(s3.port);
    await px.setMode({ kind: 'die-after', bytes: 12 * MB });
    const mgr = new UploadManager({ egressId: 'EG_s3_die', primary: s3Plan(px.endpoint), backup: gcsPlan(), uploaderOptions: FAST, backupUploaderOptions: { ...FAST, gcpApiEndpoint: gcs.endpoint } });
    const f = await file();
    const r = await mgr.sink('file').upload(f.p, 'x/s3-die.mp4', 'mp4');
    await px.died();
    assert.equal(r.backup, true);
    assert.equal(r.location, `https://${gcs.bucket}.storage.googleapis.com/x/s3-die.mp4`);
    assert.equal(await sha256Url(`${gcs.endpoint}/storage/v1/b/${gcs.bucket}/o/${encodeURIComponent('x/s3-die.mp4')}?alt=media`), f.hash);
  });

  test('Ali OSS dies half-way through a multipart upload → backup (S3) complete and byte-identical', async () => {
    const px = await proxy(ali.port);
    await px.setMode({ kind: 'die-after', bytes: 12 * MB });
    const mgr = new UploadManager({ egressId: 'EG_ali_die', primary: aliPlan(px.endpoint), backup: s3Plan(s3.endpoint), uploaderOptions: FAST });
    const f = await file();
    const r = await mgr.sink('file').upload(f.p, 'ali-die.mp4', 'mp4');
    await px.died();
    assert.equal(r.backup, true);
    assert.equal(r.location, `${s3.endpoint}/${s3.bucket}/ali-die.mp4`);
    assert.equal(await s3Hash('ali-die.mp4'), f.hash);
  });

  test('GCS down → backup (local) used', async () => {
    const px = await proxy(gcs.port);
    await px.setMode({ kind: 'down' });
    const localStore = path.join(dir, 'backup-store');
    const mgr = new UploadManager({ egressId: 'EG_gcs_down', primary: gcsPlan(), backup: { target: null, prefix: '', generatePresignedUrl: false }, uploaderOptions: { ...FAST, gcpApiEndpoint: px.endpoint }, backupUploaderOptions: { localBaseDir: localStore } });
    const f = await file(6 * MB);
    const r = await mgr.sink('file').upload(f.p, 'g/down.mp4', 'mp4');
    assert.equal(r.backup, true);
    assert.equal(r.location, path.join(localStore, 'g/down.mp4'));
    assert.equal(await sha256File(r.location), f.hash);
  });

  test('no backup: 403 → "S3 upload failed: <cause>", file kept on disk and reported', async () => {
    const px = await proxy(s3.port);
    await px.setMode({ kind: 'forbidden' });
    const mgr = new UploadManager({ egressId: 'EG_nobk', primary: s3Plan(px.endpoint), uploaderOptions: FAST });
    const f = await file(6 * MB);
    await assert.rejects(mgr.sink('file').upload(f.p, 'nobk.mp4', 'mp4', { deleteAfterUpload: true }), (err: unknown) => {
      assert.ok(err instanceof UploadError);
      assert.equal(err.message, 'S3 upload failed: Access Denied');
      assert.equal(err.psrpcCode, 'invalid_argument');
      assert.equal(err.localPath, f.p);
      assert.equal(err.destination, true);
      return true;
    });
    assert.equal((await stat(f.p)).size, 6 * MB);
    assert.deepEqual(mgr.leftOnDisk, [f.p]);
    assert.equal(mgr.backupStorageUsed, false);
  });

  test('no backup: storage down / dying half-way → "<Provider> upload failed: …", file kept', async () => {
    for (const [label, port, plan] of [
      ['Azure', az.port, (ep: string) => ({ plan: azPlan(), opts: { ...FAST, azureServiceUrl: `${ep}/${az.account}` } })],
      ['AliOSS', ali.port, (ep: string) => ({ plan: aliPlan(ep), opts: FAST })],
      ['GCP', gcs.port, (ep: string) => ({ plan: gcsPlan(), opts: { ...FAST, gcpApiEndpoint: ep } })],
    ] as const) {
      const px = await proxy(port);
      await px.setMode(label === 'GCP' ? { kind: 'down' } : { kind: 'die-after', bytes: 7 * MB });
      const { plan: p, opts } = plan(px.endpoint);
      const mgr = new UploadManager({ egressId: `EG_${label}`, primary: p, uploaderOptions: opts });
      const f = await file(label === 'GCP' ? 1 * MB : 12 * MB);
      await assert.rejects(mgr.sink('file').upload(f.p, 'gone.mp4', 'mp4', { deleteAfterUpload: true }), (err: unknown) => {
        assert.ok(err instanceof UploadError);
        assert.ok(err.message.startsWith(`${label} upload failed: `), err.message);
        assert.ok(!err.message.includes('\n'), err.message);
        assert.equal(err.localPath, f.p);
        return true;
      });
      await stat(f.p);
      assert.deepEqual(mgr.leftOnDisk, [f.p]);
    }
  });

  test('primary and backup both failing → "primary: <err>\\nbackup: <err>"', async () => {
    const p1 = await proxy(s3.port);
    await p1.setMode({ kind: 'forbidden' });
    const p2 = await proxy(az.port);
    await p2.setMode({ kind: 'down' });
    const mgr = new UploadManager({ egressId: 'EG_both', primary: s3Plan(p1.endpoint), backup: azPlan(), uploaderOptions: FAST, backupUploaderOptions: { ...FAST, azureServiceUrl: `${p2.endpoint}/${az.account}` } });
    const f = await file(1 * MB);
    await assert.rejects(mgr.sink('file').upload(f.p, 'both.mp4', 'mp4', { deleteAfterUpload: true }), (err: unknown) => {
      assert.ok(err instanceof UploadError);
      assert.match(err.message, /^primary: S3 upload failed: Access Denied\nbackup: Azure upload failed: .+$/);
      assert.equal(err.localPath, f.p);
      return true;
    });
    await stat(f.p);
    assert.equal(mgr.backupStorageUsed, false);
    assert.deepEqual(mgr.leftOnDisk, [f.p]);
  });
});
