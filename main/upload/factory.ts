import type { UploadTarget } from '../contracts/storage.js';
import type { StoragePlan } from '../contracts/pipeline.js';
import type { Uploader, UploaderOptions } from './types.js';

/**
 * Builds the uploader of one storage plan. Provider modules are loaded lazily so that only the
 * SDK actually used is imported (and each SDK is imported by its provider module only).
 */
export async function createUploader(plan: Pick<StoragePlan, 'target' | 'generatePresignedUrl'>, opts: UploaderOptions = {}): Promise<Uploader> {
  const target: UploadTarget | null = plan.target;
  const presign = plan.generatePresignedUrl;
  if (!target || target.kind === 'local') {
    const { LocalUploader } = await import('./local.js');
    return new LocalUploader(opts);
  }
  switch (target.kind) {
    case 's3': {
      const { S3Uploader } = await import('./s3.js');
      return new S3Uploader(target.s3, presign, opts);
    }
    case 'azure': {
      const { AzureUploader } = await import('./azure.js');
      return new AzureUploader(target.azure, presign, opts);
    }
    case 'gcp': {
      const { GcsUploader } = await import('./gcs.js');
      return new GcsUploader(target.gcp, presign, opts);
    }
    case 'alioss': {
      const { AliOssUploader } = await import('./alioss.js');
      return new AliOssUploader(target.alioss, presign, opts);
    }
  }
}
