/**
 * Secrets never leak: uploads that succeed (with presigned URLs) and uploads that fail (bad keys,
 * 403, storage down) run in a child process; its logs (stderr), its returned info and errors
 * (stdout) are grepped for every secret. Access key ids may only appear inside presigned URLs
 * (they are part of what S3/OSS presigning produces), never in logs or errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { s3ConfigSchema } from '../../main/contracts/storage.js';
import type { StoragePlan } from '../../main/contracts/pipeline.js';
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
import { MB, runChild, sha256File, sha256Url, type ChildResult } from './helpers.js';

const uniq = (p: string): string => `${p}${randomBytes(12).toString('hex')}`;

describe('no secret in logs, errors or returned info', { concurrency: false }, () => {
  let dir: string;
  let file: string;
  let hash: string;
  let s3: S3Emulator;
  let az: AzureEmulator;
  let gcs: GcsEmulator;
  let ali: AliOssEmulator;
  let px: FaultProxy;
  const S3_KEY = uniq('AKIAS3KEY');
  const S3_SECRET = uniq('s3secret');
  const ALI_KEY = uniq('LTAIKEY');
  const ALI_SECRET = uniq('alisecret');

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upload-secrets-'));
    [s3, az, gcs, ali] = await Promise.all([
      startS3({ accessKey: S3_KEY, secret: S3_SECRET }),
      startAzurite(),
      startFakeGcs(),
      startAliOss({ accessKey: ALI_KEY, secret: ALI_SECRET }),
    ]);
    px = await startFaultProxy(s3.port, { kind: 'forbidden' });
    await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.account, az.key)).getContainerClient('rec').create();
    file = await makeTestFile(dir, 'small.mp4', 6 * MB, 9);
    hash = await sha256File(file);
  });
  after(async () => {
    await px?.stop();
    await Promise.allSettled([s3?.stop(), az?.stop(), gcs?.stop(), ali?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const assertClean = (r: ChildResult, secrets: string[], keyIds: string[]): void => {
    const all = r.stdout + r.stderr;
    for (const s of secrets) assert.ok(!all.includes(s), `secret leaked: ${s.slice(0, 6)}… in ${all.slice(0, 3000)}`);
    const withoutUrls = r.stderr + JSON.stringify(r.results.map((x) => (x.ok ? { ...x, location: '' } : x)));
    for (const k of keyIds) assert.ok(!withoutUrls.includes(k), `access key id leaked outside a presigned URL: ${k.slice(0, 6)}…`);
  };
  const up = [{ localPath: '', storageFilepath: 'sec/small.mp4', outputType: 'mp4' as const }];
  const upl = () => up.map((u) => ({ ...u, localPath: file }));

  test('S3: presigned success, bad secret, session token + external id behind a 403', async () => {
    const SESSION = uniq('sessiontoken');
    const EXT = uniq('externalid');
    const ok: StoragePlan = { target: { kind: 's3', s3: s3ConfigSchema.parse({ access_key: S3_KEY, secret: S3_SECRET, endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true }) }, prefix: '', generatePresignedUrl: true };
    const r1 = await runChild({ primary: ok, uploads: upl() });
    const res = r1.results[0];
    assert.ok(res?.ok, JSON.stringify(res));
    assert.match(res.location, /X-Amz-Signature=/);
    assert.match(res.location, /X-Amz-Expires=604800/);
    assert.equal(await sha256Url(res.location), hash, 'presigned URL must download the object');
    assertClean(r1, [S3_SECRET], []);
    const WRONG_KEY = uniq('AKIAWRONG');
    const bad: StoragePlan = { target: { kind: 's3', s3: s3ConfigSchema.parse({ access_key: WRONG_KEY, secret: uniq('wrongsecret'), endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true, max_retries: 1 }) }, prefix: '', generatePresignedUrl: false };
    const r2 = await runChild({ primary: bad, uploads: upl() });
    assert.equal(r2.results[0]?.ok, false);
    assertClean(r2, [S3_SECRET, bad.target?.kind === 's3' ? bad.target.s3.secret : ''], [S3_KEY, WRONG_KEY]);
    const tok: StoragePlan = { target: { kind: 's3', s3: s3ConfigSchema.parse({ access_key: S3_KEY, secret: S3_SECRET, session_token: SESSION, assume_role_external_id: EXT, endpoint: px.endpoint, bucket: s3.bucket, region: 'us-east-1', force_path_style: true, max_retries: 1 }) }, prefix: '', generatePresignedUrl: false };
    const r3 = await runChild({ primary: tok, backup: bad, uploads: upl() });
    const e3 = r3.results[0];
    assert.ok(e3 && !e3.ok);
    assert.match(e3.message, /^primary: S3 upload failed: Access Denied\nbackup: S3 upload failed: /);
    assertClean(r3, [S3_SECRET, SESSION, EXT], [S3_KEY, WRONG_KEY]);
  });

  test('Azure: presigned success, wrong account key', async () => {
    const ok: StoragePlan = { target: { kind: 'azure', azure: { account_name: az.account, account_key: az.key, container_name: 'rec' } }, prefix: '', generatePresignedUrl: true };
    const r1 = await runChild({ primary: ok, options: { azureServiceUrl: az.serviceUrl }, uploads: upl() });
    const res = r1.results[0];
    assert.ok(res?.ok, JSON.stringify(res));
    assert.match(res.location, /[?&]sig=/);
    assert.equal(await sha256Url(res.location), hash, 'SAS URL must download the blob');
    assertClean(r1, [az.key], []);
    const WRONG = randomBytes(64).toString('base64');
    const bad: StoragePlan = { target: { kind: 'azure', azure: { account_name: az.account, account_key: WRONG, container_name: 'rec' } }, prefix: '', generatePresignedUrl: false };
    const r2 = await runChild({ primary: bad, options: { azureServiceUrl: az.serviceUrl, maxRetryDelayMs: 100 }, uploads: upl() });
    const e2 = r2.results[0];
    assert.ok(e2 && !e2.ok);
    assert.ok(e2.message.startsWith('Azure upload failed: '), e2.message);
    assertClean(r2, [WRONG, az.key], []);
  });

  test('GCS: credentials JSON with a private key, presigned URL', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const keyId = uniq('keyid');
    const creds = JSON.stringify({ type: 'service_account', project_id: 'test', private_key_id: keyId, private_key: privateKey, client_email: 'egress@test.iam.gserviceaccount.com', client_id: '1', token_uri: `${gcs.endpoint}/token` });
    const plan: StoragePlan = { target: { kind: 'gcp', gcp: { credentials_json: creds, bucket: gcs.bucket } }, prefix: '', generatePresignedUrl: true };
    const r1 = await runChild({ primary: plan, options: { gcpApiEndpoint: gcs.endpoint }, uploads: upl() });
    const res = r1.results[0];
    assert.ok(res?.ok, JSON.stringify(res));
    assert.match(res.location, /X-Goog-Signature=/);
    const pemBody = privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
    assertClean(r1, [keyId, ...pemBody], []);
    const badPlan: StoragePlan = { target: { kind: 'gcp', gcp: { credentials_json: creds, bucket: 'no-such-bucket' } }, prefix: '', generatePresignedUrl: false };
    const r2 = await runChild({ primary: badPlan, options: { gcpApiEndpoint: gcs.endpoint, maxRetryDelayMs: 100 }, uploads: upl() });
    assert.equal(r2.results[0]?.ok, false);
    assertClean(r2, [keyId, ...pemBody], []);
  });

  test('Ali OSS: presigned success (signature checked by the server), wrong secret', async () => {
    const ok: StoragePlan = { target: { kind: 'alioss', alioss: { access_key: ALI_KEY, secret: ALI_SECRET, region: '', endpoint: ali.endpoint, bucket: ali.bucket } }, prefix: '', generatePresignedUrl: true };
    const r1 = await runChild({ primary: ok, uploads: upl() });
    const res = r1.results[0];
    assert.ok(res?.ok, JSON.stringify(res));
    assert.match(res.location, /Signature=/);
    assert.equal(await sha256Url(res.location), hash, 'signed URL must download the object');
    assertClean(r1, [ALI_SECRET], []);
    const WRONG = uniq('wrongali');
    const bad: StoragePlan = { target: { kind: 'alioss', alioss: { access_key: ALI_KEY, secret: WRONG, region: '', endpoint: ali.endpoint, bucket: ali.bucket } }, prefix: '', generatePresignedUrl: false };
    const r2 = await runChild({ primary: bad, uploads: upl() });
    const e2 = r2.results[0];
    assert.ok(e2 && !e2.ok);
    assert.match(e2.message, /^AliOSS upload failed: .*SignatureDoesNotMatch|^AliOSS upload failed: /);
    assertClean(r2, [ALI_SECRET, WRONG], [ALI_KEY]);
  });
});
