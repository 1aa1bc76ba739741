import { stat } from 'node:fs/promises';
import type { EgressInfo } from '@livekit/protocol';
import type { ServiceConfig } from '../config/index.js';
import type { PipelinePlan } from '../contracts/pipeline.js';
import { createEgressUploads } from '../egress/uploads.js';
import { truncateToCompleteFragments } from '../../gst/fmp4-duration.js';
import { unfinishedDurationNs } from '../../gst/container-duration.js';
import { logger } from '../log.js';
import { commOf, killRemembered, stillRunning, type ProcStat } from './proc.js';

/**
 * What a dead handler leaves behind. Its GStreamer child keeps running: the handler's end of its input
 * pipes closed with the handler, so gst-launch sees end-of-stream and finishes the file by itself.
 * The worker gives it that time, then takes the file over: the duration is read from the file (what
 * reached the disk is what was recorded; the wall-clock span only where the container is not one we
 * read), and the file is uploaded like any other — or, if that
 * fails, left where it is and reported there.
 */

const log = logger('service');

/** How long a gst-launch orphaned by its handler may take to finish the file it was writing. */
const ORPHAN_EOS_MS = 10_000;

const isGst = (p: ProcStat): boolean => commOf(p.pid).startsWith('gst-launch');

/** Kills an egress's remembered processes at once, except gst-launch (see finishOrphanedPipeline). */
export function killAllButPipeline(tree: readonly ProcStat[]): void {
  killRemembered(tree, isGst);
}

/** Waits for the spared gst-launch processes to finish (EOS) and kills any that do not in time. */
export async function finishOrphanedPipeline(tree: readonly ProcStat[], timeoutMs = ORPHAN_EOS_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (tree.some(stillRunning) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  killRemembered(tree);
}

/**
 * Fills `info`'s file result from the file the dead handler's pipeline wrote, uploading it. Leaves
 * `info` as it is when there is no file (the handler died before recording anything).
 */
export async function deliverOrphanedFile(plan: PipelinePlan, info: EgressInfo, config: ServiceConfig): Promise<void> {
  const file = plan.file;
  const result = info.fileResults[0];
  if (!file || !result) return;
  // The pipeline may have been killed in the middle of a fragment: that part plays nothing.
  if (file.fileType === 'mp4') await truncateToCompleteFragments(file.localFilepath).catch(() => 0);
  let size: number;
  try {
    size = (await stat(file.localFilepath)).size;
  } catch {
    return;
  }
  if (size === 0) return;
  const startNs = result.startedAt > 0n ? result.startedAt : info.startedAt;
  const onDisk = await unfinishedDurationNs(file.fileType, file.localFilepath);
  const duration = onDisk ?? (startNs > 0n && info.endedAt > startNs ? info.endedAt - startNs : 0n);
  result.startedAt = startNs;
  result.duration = duration;
  result.endedAt = startNs + duration;
  result.size = BigInt(size);
  result.location = file.localFilepath;
  result.filename = file.storageFilepath;
  try {
    const uploads = createEgressUploads(plan, config, { localBaseDir: process.cwd() });
    const out = await uploads.sink('file').upload(file.localFilepath, file.storageFilepath, file.fileType, { deleteAfterUpload: true });
    result.location = out.location;
    result.filename = out.storagePath;
    info.backupStorageUsed = uploads.backupStorageUsed;
    log.info(`file of the dead handler delivered to ${out.location} [egress:${plan.egressId}]`);
  } catch (err) {
    log.error(`file of the dead handler left at ${file.localFilepath}: ${(err as Error).message} [egress:${plan.egressId}]`);
  }
}
