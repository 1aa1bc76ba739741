/**
 * Each provider against a real emulator: a big file (200 MB, generated here) uploaded by a child
 * process whose peak RSS must stay < 150 MB, then downloaded and compared byte for byte; the
 * returned location must have the original's format.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import {
  makeTestFile,
  startAliOss,
  startAzurite,
  startFakeGcs,
  startS3,
  type AliOssEmulator,
  type AzureEmulator,
  type GcsEmulator,
  type S3Emulator,
} from '../harness/storage.js';
import { MB, runChild, sha256File, sha256Stream, sha256Url } from './helpers.js';
import { s3ConfigSchema } from '../../main/contracts/storage.js';
import type { Readable } from 'node:stream';

const SIZE = Number(process.env['UPLOAD_TEST_MB'] ?? 200) * MB;
const RSS_LIMIT = 150 * MB;
const peaks: Record<string, number> = {};

describe('uploaders against real emulators', { concurrency: false }, () => {
  let dir: string;
  let file: string;
  let hash: string;
  let s3: S3Emulator;
  let az: AzureEmulator;
  let gcs: GcsEmulator;
  let ali: AliOssEmulator;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upload-big-'));
    [s3, az, gcs, ali] = await Promise.all([startS3(), startAzurite(), startFakeGcs(), startAliOss()]);
    await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.account, az.key)).getContainerClient('rec').create();
    file = await makeTestFile(dir, 'big.mp4', SIZE, 7);
    hash = await sha256File(file);
  });

  after(async () => {
    await Promise.allSettled([s3?.stop(), az?.stop(), gcs?.stop(), ali?.stop()]);
    await rm(dir, { recursive: true, force: true });
    process.stderr.write(`peak RSS (MB): ${JSON.stringify(Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, Math.round(v / MB)])))}\n`);
  });

  const check = async (name: string, r: Awaited<ReturnType<typeof runChild>>): Promise<{ location: string; storagePath: string }> => {
    const res = r.results[0];
    assert.ok(res, 'no result');
    assert.ok(res.ok, `upload failed: ${res.ok ? '' : res.message}`);
    assert.equal(res.size, SIZE);
    peaks[name] = r.peakRss;
    assert.ok(r.peakRss < RSS_LIMIT, `${name} uploader peak RSS ${Math.round(r.peakRss / MB)} MB ≥ 150 MB`);
    assert.equal(r.backupStorageUsed, false);
    // Progress (the booth's "stored" bar): ends at the file's size, never goes back, and a store
    // that takes the file in parts says so on the way; local storage reports once, at the end.
    const p = res.progress;
    assert.equal(p.total, SIZE, `${name} progress total`);
    assert.equal(p.lastSent, SIZE, `${name} progress ends at the size: ${JSON.stringify(p)}`);
    assert.equal(p.backwards, 0, `${name} progress went backwards: ${JSON.stringify(p)}`);
    if (name === 'Local') assert.equal(p.reports, 1);
    else assert.ok(p.intermediate >= 1, `${name} reported no progress before the end: ${JSON.stringify(p)}`);
    await stat(file); // the source stays
    return res;
  };

  test('S3 (s3rver): multipart, bounded memory, path-style location, byte-identical', async () => {
    const conf = s3ConfigSchema.parse({ access_key: s3.accessKey, secret: s3.secret, endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true, metadata: { k: 'v' }, tagging: 'a=b' });
    const r = await runChild({ primary: { target: { kind: 's3', s3: conf }, prefix: 'pre', generatePresignedUrl: false }, uploads: [{ localPath: file, storageFilepath: 'dir/big.mp4', outputType: 'mp4' }] });
    const res = await check('S3', r);
    assert.equal(res.location, `${s3.endpoint}/${s3.bucket}/pre/dir/big.mp4`);
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
    const obj = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'pre/dir/big.mp4' }));
    assert.equal(obj.ContentType, 'video/mp4');
    assert.equal(obj.ContentDisposition, 'inline');
    assert.deepEqual(obj.Metadata, { k: 'v' });
    assert.equal(await sha256Stream(obj.Body as Readable), hash);
    client.destroy();
  });

  test('Azure (azurite): block blob, bounded memory, location format, byte-identical', async () => {
    const r = await runChild({
      primary: { target: { kind: 'azure', azure: { account_name: az.account, account_key: az.key, container_name: 'rec' } }, prefix: '', generatePresignedUrl: false },
      options: { azureServiceUrl: az.serviceUrl },
      uploads: [{ localPath: file, storageFilepath: 'big.mp4', outputType: 'mp4' }],
    });
    const res = await check('Azure', r);
    assert.equal(res.location, `https://${az.account}.blob.core.windows.net/rec/big.mp4`);
    const blob = new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.account, az.key)).getContainerClient('rec').getBlobClient('big.mp4');
    const dl = await blob.download();
    assert.equal(dl.contentType, 'video/mp4');
    assert.equal(await sha256Stream(dl.readableStreamBody as Readable), hash);
  });

  test('GCS (fake-gcs-server): resumable upload, bounded memory, location format, byte-identical', async () => {
    const r = await runChild({
      primary: { target: { kind: 'gcp', gcp: { credentials_json: '', bucket: gcs.bucket } }, prefix: 'g', generatePresignedUrl: false },
      options: { gcpApiEndpoint: gcs.endpoint },
      uploads: [{ localPath: file, storageFilepath: 'big.mp4', outputType: 'mp4' }],
    });
    const res = await check('GCP', r);
    assert.equal(res.location, `https://${gcs.bucket}.storage.googleapis.com/g/big.mp4`);
    const meta = (await (await fetch(`${gcs.endpoint}/storage/v1/b/${gcs.bucket}/o/${encodeURIComponent('g/big.mp4')}`)).json()) as { contentType?: string; size?: string };
    // fake-gcs-server drops the content type of resumable uploads (it keeps it for simple uploads),
    // so it is not checked here.
    assert.ok(meta.contentType);
    assert.equal(Number(meta.size), SIZE);
    assert.equal(await sha256Url(`${gcs.endpoint}/storage/v1/b/${gcs.bucket}/o/${encodeURIComponent('g/big.mp4')}?alt=media`), hash);
  });

  test('Ali OSS (signature-checking loopback server): multipart, bounded memory, location format, byte-identical', async () => {
    const r = await runChild({
      primary: { target: { kind: 'alioss', alioss: { access_key: ali.accessKey, secret: ali.secret, region: '', endpoint: ali.endpoint, bucket: ali.bucket } }, prefix: '', generatePresignedUrl: false },
      uploads: [{ localPath: file, storageFilepath: 'a/big.mp4', outputType: 'mp4' }],
    });
    const res = await check('AliOSS', r);
    assert.equal(res.location, `https://${ali.bucket}.127.0.0.1:${ali.port}/a/big.mp4`);
    assert.equal(ali.badSignatures, 0);
    assert.ok(ali.multipartCompleted >= 1, 'expected a multipart upload');
    assert.equal(await sha256File(ali.objectPath('a/big.mp4')), hash);
  });

  test('Local: copied to the storage path, location = absolute path', async () => {
    const r = await runChild({
      primary: { target: null, prefix: path.join(dir, 'local-store'), generatePresignedUrl: false },
      uploads: [{ localPath: file, storageFilepath: 'x/big.mp4', outputType: 'mp4' }],
    });
    const res = await check('Local', r);
    assert.equal(res.location, path.join(dir, 'local-store', 'x', 'big.mp4'));
    assert.equal(await sha256File(res.location), hash);
    await rm(res.location);
  });
});
