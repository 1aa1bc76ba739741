import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AliOSSUpload,
  AzureBlobUpload,
  EncodedFileOutput,
  GCPUpload,
  ProxyConfig,
  S3Upload,
  StorageConfig,
} from '@livekit/protocol';
import { storageConfigSchema } from '../../main/contracts/storage.js';
import { EgressError } from '../../main/contracts/errors.js';
import { redactStorageSecretsInPlace, resolveBackupPlan, resolveStoragePlan } from '../../main/upload/resolve.js';

const serviceStorage = storageConfigSchema.parse({
  prefix: 'pre',
  generate_presigned_url: true,
  s3: { access_key: 'CFGKEY', secret: 'CFGSECRET', bucket: 'cfg-bucket', region: 'eu-west-1', max_retries: 9, max_retry_delay: '2s' },
});

test('no config anywhere → local; disallow_local_storage → output error', () => {
  const plan = resolveStoragePlan(undefined, undefined, {});
  assert.deepEqual(plan, { target: null, prefix: '', generatePresignedUrl: false });
  assert.throws(
    () => resolveStoragePlan(undefined, { case: undefined }, { disallowLocalStorage: true }),
    (e: unknown) => e instanceof EgressError && e.message === 'request has missing or invalid field: output' && e.psrpcCode === 'invalid_argument',
  );
  // prefix-only service storage is still local
  const p2 = resolveStoragePlan(undefined, undefined, { storage: storageConfigSchema.parse({ prefix: 'x' }) });
  assert.equal(p2.target, null);
  assert.equal(p2.prefix, 'x');
});

test('service config used when the request has none; prefix and presign always applied', () => {
  const plan = resolveStoragePlan(undefined, undefined, { storage: serviceStorage, disallowLocalStorage: true });
  assert.equal(plan.target?.kind, 's3');
  assert.equal(plan.prefix, 'pre');
  assert.equal(plan.generatePresignedUrl, true);
});

test('per-output beats per-request beats config; request S3 copies retry settings from config', () => {
  const perReq = new StorageConfig({ provider: { case: 'azure', value: new AzureBlobUpload({ accountName: 'acc', accountKey: 'k', containerName: 'c' }) } });
  const out = new EncodedFileOutput({ output: { case: 's3', value: new S3Upload({ accessKey: 'AK', secret: 'SK', bucket: 'b', proxy: new ProxyConfig({ url: 'http://p:3128' }) }) } });
  const plan = resolveStoragePlan(out.output, perReq.provider, { storage: serviceStorage });
  assert.equal(plan.target?.kind, 's3');
  if (plan.target?.kind !== 's3') return;
  assert.equal(plan.target.s3.access_key, 'AK');
  assert.equal(plan.target.s3.bucket, 'b');
  assert.equal(plan.target.s3.region, '');
  assert.equal(plan.target.s3.max_retries, 9);
  assert.equal(plan.target.s3.max_retry_delay, 2000);
  assert.equal(plan.target.s3.min_retry_delay, 100);
  assert.equal(plan.target.s3.proxy_config?.url, 'http://p:3128');
  assert.equal(plan.prefix, 'pre');
  const p2 = resolveStoragePlan(new EncodedFileOutput().output, perReq.provider, { storage: serviceStorage });
  assert.equal(p2.target?.kind, 'azure');
});

test('per-request S3 defaults without service S3', () => {
  const plan = resolveStoragePlan(undefined, { case: 's3', value: new S3Upload({ accessKey: 'a', secret: 'b', bucket: 'x' }) }, {});
  assert.ok(plan.target?.kind === 's3');
  if (plan.target?.kind !== 's3') return;
  assert.equal(plan.target.s3.max_retries, 5);
  assert.equal(plan.target.s3.max_retry_delay, 5000);
  assert.equal(plan.target.s3.min_retry_delay, 100);
});

test('assume role rules', () => {
  const req = (arn: string, key = '') => ({ case: 's3' as const, value: new S3Upload({ assumeRoleArn: arn, accessKey: key, bucket: 'b' }) });
  assert.throws(
    () => resolveStoragePlan(req('arn:aws:iam::1:role/r'), undefined, {}),
    (e: unknown) => e instanceof EgressError && e.message === 'S3 upload using AssumeRole is disabled for this account' && e.psrpcCode === 'permission_denied' && e.httpStatus === 403,
  );
  const plan = resolveStoragePlan(req('arn:aws:iam::1:role/r'), undefined, { s3AssumeRoleKey: 'SK1', s3AssumeRoleSecret: 'SS1' });
  assert.ok(plan.target?.kind === 's3' && plan.target.s3.access_key === 'SK1' && plan.target.s3.secret === 'SS1');
  // server ARN + external id used when the request has none
  const p2 = resolveStoragePlan(req(''), undefined, { s3AssumeRoleArn: 'arn:srv', s3AssumeRoleExternalId: 'ext', s3AssumeRoleKey: 'K', s3AssumeRoleSecret: 'S' });
  assert.ok(p2.target?.kind === 's3');
  if (p2.target?.kind !== 's3') return;
  assert.equal(p2.target.s3.assume_role_arn, 'arn:srv');
  assert.equal(p2.target.s3.assume_role_external_id, 'ext');
  assert.equal(p2.target.s3.access_key, 'K');
  // request key with server ARN: request static creds kept
  const p3 = resolveStoragePlan(req('', 'REQKEY'), undefined, { s3AssumeRoleArn: 'arn:srv' });
  assert.ok(p3.target?.kind === 's3' && p3.target.s3.access_key === 'REQKEY' && p3.target.s3.assume_role_arn === 'arn:srv');
});

test('gcp / aliOSS conversion and backup plan', () => {
  const g = resolveStoragePlan({ case: 'gcp', value: new GCPUpload({ credentials: '{"x":1}', bucket: 'gb' }) }, undefined, {});
  assert.deepEqual(g.target, { kind: 'gcp', gcp: { credentials_json: '{"x":1}', bucket: 'gb' } });
  const a = resolveStoragePlan({ case: 'aliOSS', value: new AliOSSUpload({ accessKey: 'a', secret: 's', endpoint: 'oss-cn-hangzhou.aliyuncs.com', bucket: 'ab' }) }, undefined, {});
  assert.equal(a.target?.kind, 'alioss');
  assert.equal(resolveBackupPlan(undefined), null);
  const b = resolveBackupPlan(storageConfigSchema.parse({ prefix: 'bk', azure: { account_name: 'n', account_key: 'k', container_name: 'c' } }));
  assert.equal(b?.target?.kind, 'azure');
  assert.equal(b?.prefix, 'bk');
});

test('redaction replaces secrets by placeholders everywhere in a request', () => {
  const out = new EncodedFileOutput({
    filepath: 'x.mp4',
    output: { case: 's3', value: new S3Upload({ accessKey: 'AKIA1234', secret: 'SECRET123', sessionToken: 'TOKEN123', assumeRoleExternalId: 'EXT123', bucket: 'b' }) },
  });
  const storage = new StorageConfig({ provider: { case: 'gcp', value: new GCPUpload({ credentials: '{"private_key":"PK"}', bucket: 'g' }) } });
  const az = new StorageConfig({ provider: { case: 'azure', value: new AzureBlobUpload({ accountName: 'ACCNAME', accountKey: 'ACCKEY', containerName: 'c' }) } });
  const ali = new StorageConfig({ provider: { case: 'aliOSS', value: new AliOSSUpload({ accessKey: 'ALIKEY', secret: 'ALISECRET', bucket: 'b' }) } });
  const root = { outs: [out], storage, az, ali };
  redactStorageSecretsInPlace(root);
  const text = JSON.stringify([out.toJson(), storage.toJson(), az.toJson(), ali.toJson()]);
  for (const s of ['AKIA1234', 'SECRET123', 'TOKEN123', 'EXT123', 'PK', 'ACCNAME', 'ACCKEY', 'ALIKEY', 'ALISECRET']) assert.ok(!text.includes(s), s);
  for (const p of ['{access_key}', '{secret}', '{session_token}', '{external_id}', '{credentials}', '{account_name}', '{account_key}']) assert.ok(text.includes(p), p);
  assert.ok(text.includes('"bucket":"b"'));
});
