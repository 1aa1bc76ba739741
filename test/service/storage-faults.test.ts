/**
 * Output faults of `egress serve`, end to end with livekit-server + Redis: the disk under the
 * worker's temp dir filling up (a small tmpfs in the worker's own mount namespace), and the storage
 * going slow and then down while a recording is uploaded (a fault proxy in front of the S3 emulator,
 * a second emulator as backup storage).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { EgressStatus, type EgressInfo } from 'livekit-server-sdk';
import { livekitBinary } from '../harness/livekit.js';
import { sleep } from '../harness/redis.js';
import { startFaultProxy, startS3, type FaultProxy, type S3Emulator } from '../harness/storage.js';
import { setLogLevel } from '../../main/log.js';
import { assertFaultedFile } from '../support/fault-checks.js';
import { fileOut, infoOf, startEnv, waitStatus, type Env } from './common.js';
import { startWorker, waitFor, type WorkerProc } from './worker-harness.js';

setLogLevel('error');
const binary = livekitBinary();

function s3Client(s3: S3Emulator): S3Client {
  return new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } });
}

async function objects(s3: S3Emulator): Promise<{ key: string; size: number }[]> {
  const r = await s3Client(s3).send(new ListObjectsV2Command({ Bucket: s3.bucket }));
  return (r.Contents ?? []).map((o) => ({ key: o.Key ?? '', size: o.Size ?? 0 }));
}

async function download(s3: S3Emulator, key: string, to: string): Promise<void> {
  const r = await s3Client(s3).send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  await pipeline(r.Body as Readable, createWriteStream(to));
}

async function ended(env: Env, id: string, timeoutMs: number): Promise<EgressInfo> {
  return waitFor(
    `${id} ended`,
    async () => {
      const i = await infoOf(env.api, id);
      return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
    },
    timeoutMs,
    100,
  );
}

describe('egress serve: output faults', { skip: binary ? false : 'livekit-server not built: bash scripts/install-livekit.sh' }, () => {
  let env: Env;
  const workers: WorkerProc[] = [];

  before(async () => {
    env = await startEnv();
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await env?.close();
  });

  test('the disk under the temp dir fills up while recording: FAILED naming the full disk within 3 s, what was written is delivered and plays, the worker keeps serving', async (t) => {
    // 5 MiB: the browser profile (~2.5 MiB) and some seconds of 720p.
    const w = await startWorker({ redisPort: env.redis.port, tmpDir: join(env.dir, 'tmp-full'), cwd: env.dir, name: 'full', tmpfsMb: 5 });
    workers.push(w);
    try {
      const e = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'full.mp4')));
      await waitStatus(env.api, e.egressId, EgressStatus.EGRESS_ACTIVE, 40_000);
      // The fault's moment: when the tmpfs (seen through the worker's mount namespace) is full.
      let fullAt = 0;
      const watch = setInterval(() => {
        statfs(`/proc/${w.pid}/root${join(env.dir, 'tmp-full')}`)
          .then((st) => {
            if (!fullAt && st.bavail * st.bsize < 256 * 1024) fullAt = Date.now();
          })
          .catch(() => undefined);
      }, 50);
      const info = await ended(env, e.egressId, 90_000).finally(() => clearInterval(watch));
      // When the disk filled: the worker logs the first write error of the pipeline.
      t.diagnostic(`disk full: ${EgressStatus[info.status]} ${info.error}`);
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.match(info.error, /no space left/i);
      const endedAt = Number(info.endedAt) / 1e6;
      const f = info.fileResults[0];
      assert.ok(f?.location, 'what was recorded is reported');
      const fileEndsAt = Number(f.startedAt) / 1e6 + Number(f.duration) / 1e6;
      t.diagnostic(`file ${f.location}: ${(Number(f.duration) / 1e9).toFixed(2)} s; final status ${(endedAt - fullAt).toFixed(0)} ms after the disk was full, the file ends ${(fullAt - fileEndsAt).toFixed(0)} ms before it`);
      assert.ok(fullAt > 0, 'saw the disk full');
      assert.ok(endedAt - fullAt <= 3000, `final status ${(endedAt - fullAt).toFixed(0)} ms after the disk was full`);
      // The media ends at the fault: what is kept is complete fragments up to it (≤ one 1 s fragment cut).
      assert.ok(fileEndsAt <= fullAt + 500 && fullAt - fileEndsAt <= 2500, `file ends ${(fullAt - fileEndsAt).toFixed(0)} ms before the disk was full`);
      await assertFaultedFile(f.location, f.duration, 'disk full');

      // The worker is not stuck: once the egress is gone its temp dir is freed and it serves again.
      const later = await env.api.startWebEgress(env.pageUrl, fileOut(join(env.dir, 'full-later.mp4')), { audioOnly: true });
      await waitStatus(env.api, later.egressId, EgressStatus.EGRESS_ACTIVE, 40_000);
      await sleep(1500);
      await env.api.stopEgress(later.egressId);
      await waitStatus(env.api, later.egressId, EgressStatus.EGRESS_COMPLETE, 30_000);
    } finally {
      await w.kill();
    }
  });

  test('storage slow and then down while the recording is uploaded: the upload is retried, then the backup storage holds it exactly once, COMPLETE with backup_storage_used', async (t) => {
    const primary = await startS3({ bucket: 'primary' });
    const backup = await startS3({ bucket: 'backup' });
    const proxy: FaultProxy = await startFaultProxy(primary.port);
    const s3conf = (s3: S3Emulator, endpoint: string) => ({
      access_key: s3.accessKey,
      secret: s3.secret,
      endpoint,
      bucket: s3.bucket,
      region: 'us-east-1',
      force_path_style: true,
      max_retries: 3,
      min_retry_delay: '100ms',
      max_retry_delay: '500ms',
    });
    const w = await startWorker({
      redisPort: env.redis.port,
      tmpDir: join(env.dir, 'tmp-s3'),
      cwd: env.dir,
      name: 's3',
      extra: { storage: { s3: s3conf(primary, proxy.endpoint) }, backup: { s3: s3conf(backup, backup.endpoint) } },
    });
    workers.push(w);
    try {
      const e = await env.api.startWebEgress(env.pageUrl, fileOut('slow/rec.mp4'));
      await waitStatus(env.api, e.egressId, EgressStatus.EGRESS_ACTIVE, 40_000);
      await sleep(6000);
      // Slow while the file goes up, then gone.
      await proxy.setMode({ kind: 'slow', bytesPerSec: 64 * 1024 });
      await env.api.stopEgress(e.egressId);
      // Down once the upload is under way (EOS and the move to storage take a moment).
      await waitFor('upload under way', () => (proxy.forwarded > 128 * 1024 ? true : undefined), 60_000, 50);
      const forwardedWhileSlow = proxy.forwarded;
      await proxy.setMode({ kind: 'down' });
      const info = await ended(env, e.egressId, 90_000);
      t.diagnostic(`primary slow (${forwardedWhileSlow} bytes through) then down: ${EgressStatus[info.status]} ${info.error} backup_storage_used=${info.backupStorageUsed}`);
      assert.ok(forwardedWhileSlow > 0, 'the upload had started on the primary');
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(info.backupStorageUsed, true);
      const f = info.fileResults[0];
      assert.ok(f, 'file result');
      // The backup holds the recording once (beside it, the egress manifest).
      const inBackup = (await objects(backup)).filter((o) => o.key.endsWith('.mp4'));
      const inPrimary = (await objects(primary)).filter((o) => o.key.endsWith('.mp4'));
      // s3rver keeps the body of a PUT cut off half-way (a real S3 refuses a body short of its
      // Content-Length): whatever it holds is short of the file; the one complete copy is the backup.
      t.diagnostic(`primary holds ${JSON.stringify(inPrimary)}`);
      assert.ok(inPrimary.every((o) => BigInt(o.size) < f.size), 'no complete copy in the primary');
      assert.equal(inBackup.length, 1, `exactly one object in the backup: ${JSON.stringify(inBackup)}`);
      const obj = inBackup[0] as { key: string; size: number };
      assert.equal(BigInt(obj.size), f.size);
      assert.match(f.location, new RegExp(`${obj.key.replace(/[.]/g, '\\.')}$`));
      const local = join(env.dir, 'from-backup.mp4');
      await download(backup, obj.key, local);
      await assertFaultedFile(local, f.duration, 'from backup');
      // The handler's upload metrics reach the worker's scrape (it outlives the handler): the failed
      // primary attempts, the one successful upload (to the backup) and the backup write.
      const metrics = await w.metrics();
      const sample = (name: string, labels: Record<string, string>): number[] =>
        metrics
          .split('\n')
          .filter((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
          .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
      t.diagnostic(`worker /metrics: ${metrics.split('\n').filter((l) => /^livekit_egress_(pipeline_uploads|backup_storage_writes)\{/.test(l)).join(' | ')}`);
      assert.deepEqual(sample('livekit_egress_backup_storage_writes', { output_type: 'mp4' }), [1], 'one backup write of the mp4');
      assert.deepEqual(sample('livekit_egress_pipeline_uploads', { type: 'mp4', status: 'success' }), [1], 'one successful mp4 upload');
      const failedAttempts = [...sample('livekit_egress_pipeline_uploads', { type: 'mp4', status: '5xx' }), ...sample('livekit_egress_pipeline_uploads', { type: 'mp4', status: 'internal' })];
      assert.ok(failedAttempts.reduce((a, b) => a + b, 0) >= 1, 'the failed primary attempts are counted');
      assert.deepEqual(sample('livekit_egress_pipline_upload_response_time_ms_count', { type: 'mp4', status: 'success' }), [1], 'upload time observed');
    } finally {
      await w.kill();
      await proxy.stop();
      await primary.stop();
      await backup.stop();
    }
  });
});
