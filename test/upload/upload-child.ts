/**
 * Child process for the upload tests: runs one UploadManager upload and reports the outcome and
 * the process's peak RSS (VmHWM). Input: env UPLOAD_CHILD_INPUT (JSON). Output: one JSON line on stdout.
 * Logs go to stderr (the tests grep both for secrets).
 */
import { readFileSync } from 'node:fs';
import { UploadManager } from '../../main/upload/manager.js';
import type { StoragePlan } from '../../main/contracts/pipeline.js';
import type { OutputType, UploaderOptions } from '../../main/upload/types.js';
import { UploadError } from '../../main/upload/errors.js';

interface ChildInput {
  primary: StoragePlan;
  backup?: StoragePlan | null;
  options?: UploaderOptions;
  backupOptions?: UploaderOptions;
  uploads: { localPath: string; storageFilepath: string; outputType: OutputType }[];
}

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.env['UPLOAD_CHILD_INPUT'] ?? '{}') as ChildInput;
  const mgr = new UploadManager({
    egressId: 'EG_child',
    primary: input.primary,
    backup: input.backup ?? null,
    ...(input.options ? { uploaderOptions: input.options } : {}),
    ...(input.backupOptions ? { backupUploaderOptions: input.backupOptions } : {}),
  });
  const sink = mgr.sink('file');
  const results: unknown[] = [];
  for (const u of input.uploads) {
    const started = Date.now();
    // What the uploader reported while storing (the booth shows it): count, last value, whether it
    // ever went backwards, and how many reports fell strictly between 0 and the total.
    const progress = { reports: 0, lastSent: 0, total: 0, backwards: 0, intermediate: 0 };
    const onProgress = (sent: number, total: number): void => {
      if (sent < progress.lastSent) progress.backwards++;
      if (sent > 0 && sent < total) progress.intermediate++;
      progress.reports++;
      progress.lastSent = sent;
      progress.total = total;
    };
    try {
      const r = await sink.upload(u.localPath, u.storageFilepath, u.outputType, { onProgress });
      results.push({ ok: true, ...r, ms: Date.now() - started, progress });
    } catch (err) {
      const e = err as UploadError;
      results.push({ ok: false, message: e.message, localPath: e.localPath, code: e.psrpcCode, isUploadError: err instanceof UploadError, ms: Date.now() - started });
    }
  }
  process.stdout.write(
    JSON.stringify({ results, backupStorageUsed: mgr.backupStorageUsed, leftOnDisk: mgr.leftOnDisk, peakRss: peakRssBytes() }) + '\n',
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`child failed: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
