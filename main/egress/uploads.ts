import type { Registry } from 'prom-client';
import type { PipelinePlan, StoragePlan } from '../contracts/pipeline.js';
import type { ServiceConfig } from '../config/index.js';
import { resolveBackupPlan, UploadManager } from '../upload/index.js';

export interface EgressUploadOptions {
  /**
   * Base directory for relative local-storage paths. The original resolves them against `/` (its
   * handler's cwd); the standalone recorder uses its own working directory instead.
   */
  readonly localBaseDir?: string;
  readonly registry?: Registry;
}

/**
 * The upload manager of one egress output: `storage` (default: the file output's storage) as
 * primary, config `backup` as backup.
 */
export function createEgressUploads(plan: PipelinePlan, config: ServiceConfig, opts: EgressUploadOptions = {}, storage?: StoragePlan): UploadManager {
  const primary = storage ?? plan.file?.storage ?? { target: null, prefix: config.storage?.prefix ?? '', generatePresignedUrl: config.storage?.generate_presigned_url ?? false };
  const uploaderOptions = opts.localBaseDir ? { localBaseDir: opts.localBaseDir } : undefined;
  return new UploadManager({
    egressId: plan.egressId,
    primary,
    backup: resolveBackupPlan(config.backup),
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(uploaderOptions ? { uploaderOptions, backupUploaderOptions: uploaderOptions } : {}),
  });
}
