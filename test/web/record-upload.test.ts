import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, startS3, type FaultProxy, type S3Emulator } from '../harness/storage.js';
import { ffprobe, videoStream } from '../support/media.js';
import { runCli, tempDir } from '../support/web-egress.js';

/**
 * `egress record --config FILE` honours the config's storage exactly as the worker does: uploads to
 * `storage`, falls back to `backup`, and reports location, backup_storage_used and the manifest.
 */

let tmp: { path: string; remove: () => Promise<void> };
let primary: S3Emulator;
let backup: S3Emulator;
let proxy: FaultProxy;
before(async () => {
  tmp = await tempDir();
  primary = await startS3({ accessKey: 'PRIMARYKEY', secret: 'primary-secret-value', bucket: 'primary' });
  backup = await startS3({ accessKey: 'BACKUPKEY', secret: 'backup-secret-value', bucket: 'backup' });
  proxy = await startFaultProxy(primary.port);
});
after(async () => {
  await proxy.stop();
  await primary.stop();
  await backup.stop();
  await tmp.remove();
});

function s3Yaml(key: string, s: S3Emulator, endpoint: string): string {
  return `    access_key: ${s.accessKey}\n    secret: ${s.secret}\n    region: us-east-1\n    endpoint: ${endpoint}\n    bucket: ${s.bucket}\n    force_path_style: true\n    max_retries: 1\n`.replace(/^/, `  ${key}:\n`);
}

async function writeConfig(name: string, withBackup: boolean): Promise<string> {
  let yaml = `tmp_dir: ${join(tmp.path, 'work')}\nstorage:\n  prefix: recordings\n${s3Yaml('s3', primary, proxy.endpoint)}`;
  if (withBackup) yaml += `backup:\n${s3Yaml('s3', backup, backup.endpoint)}`;
  const path = join(tmp.path, name);
  await writeFile(path, yaml);
  return path;
}

async function download(s: S3Emulator, key: string): Promise<Buffer> {
  const client = new S3Client({ endpoint: s.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s.accessKey, secretAccessKey: s.secret } });
  const res = await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: key }));
  return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

describe('egress record --config: uploads', () => {
  it('uploads the recording and its manifest to the config storage (S3), location in the original format', async () => {
    await proxy.setMode({ kind: 'pass' });
    const cfg = await writeConfig('ok.yaml', true);
    const { code, last, stderr } = await runCli(['record', '--duration', '3', '--config', cfg, '--out', 'demo/take1.mp4'], tmp.path);
    assert.equal(code, 0, stderr.slice(-1500));
    assert.equal(last['status'], 'EGRESS_COMPLETE');
    const file = (last['fileResults'] as { location: string; filename: string; size: string }[])[0];
    assert.ok(file);
    assert.equal(file.filename, 'recordings/demo/take1.mp4');
    assert.equal(file.location, `${proxy.endpoint}/primary/recordings/demo/take1.mp4`);
    assert.equal(last['backupStorageUsed'], undefined, 'backup not used');
    assert.equal(last['manifestLocation'], `${proxy.endpoint}/primary/recordings/demo/${String(last['egressId'])}.json`);
    const body = await download(primary, 'recordings/demo/take1.mp4');
    assert.equal(body.length, Number(file.size));
    const local = join(tmp.path, 'downloaded.mp4');
    await writeFile(local, body);
    assert.equal(videoStream(await ffprobe(local))?.width, 1280);
    const manifest = JSON.parse((await download(primary, `recordings/demo/${String(last['egressId'])}.json`)).toString()) as { files: { location: string }[] };
    assert.equal(manifest.files[0]?.location, file.location);
    // Secrets never reach the output.
    const all = JSON.stringify(last) + stderr;
    assert.ok(!all.includes(primary.secret) && !all.includes(backup.secret), 'no secret in output or logs');
  });

  it('storage refusing (403) → the recording lands in backup, backup_storage_used = true', async () => {
    await proxy.setMode({ kind: 'forbidden' });
    const cfg = await writeConfig('backup.yaml', true);
    const { code, last, stderr } = await runCli(['record', '--duration', '3', '--config', cfg, '--out', 'demo/take2.mp4'], tmp.path);
    assert.equal(code, 0, stderr.slice(-1500));
    assert.equal(last['status'], 'EGRESS_COMPLETE');
    assert.equal(last['backupStorageUsed'], true);
    const file = (last['fileResults'] as { location: string; size: string }[])[0];
    assert.equal(file?.location, `${backup.endpoint}/backup/recordings/demo/take2.mp4`);
    const body = await download(backup, 'recordings/demo/take2.mp4');
    assert.equal(body.length, Number(file?.size));
  });

  it('storage down and no backup → FAILED with the original text, the file kept on local disk and reported', async () => {
    await proxy.setMode({ kind: 'down' });
    const cfg = await writeConfig('nobackup.yaml', false);
    const { code, last } = await runCli(['record', '--duration', '3', '--config', cfg, '--out', 'demo/take3.mp4'], tmp.path);
    assert.equal(code, 1);
    assert.equal(last['status'], 'EGRESS_FAILED');
    assert.match(String(last['error']), /^S3 upload failed: /);
    const file = (last['fileResults'] as { location: string }[])[0];
    assert.ok(file && existsSync(file.location), `reported local file ${file?.location} exists`);
    assert.ok((await readFile(file.location)).length > 10_000);
    assert.equal(videoStream(await ffprobe(file.location))?.codec_name, 'h264');
  });
});
