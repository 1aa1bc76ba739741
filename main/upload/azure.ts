import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  BlobSASPermissions,
  BlobServiceClient,
  RestError,
  StorageRetryPolicyType,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import type { AzureConfig } from '../contracts/storage.js';
import { partSizeFor, ProviderError, type ObjectResult, type ObjectUpload, type Uploader, type UploaderOptions } from './types.js';

const PRESIGN_EXPIRY_MS = 7 * 24 * 3600 * 1000;

/** `https://<account>.blob.core.windows.net/<container>/<key>`. */
export function azureLocation(conf: Pick<AzureConfig, 'account_name' | 'container_name'>, key: string): string {
  return `https://${conf.account_name}.blob.core.windows.net/${conf.container_name}/${key}`;
}

function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof RestError) {
    const code = (err.details as { errorCode?: string } | undefined)?.errorCode ?? err.code;
    const first = (err.message || '').split('\n')[0] ?? '';
    return new ProviderError(`${code ?? 'RestError'}${first ? `: ${first}` : ''}`, err.statusCode);
  }
  const e = err as { message?: unknown; statusCode?: unknown } | null;
  return new ProviderError(typeof e?.message === 'string' ? e.message : String(err), typeof e?.statusCode === 'number' ? e.statusCode : undefined);
}

/** Block blob upload with bounded buffers: blockSize × (parallel + 1) bytes at most. */
export class AzureUploader implements Uploader {
  readonly label = 'Azure' as const;
  readonly customEndpoint: boolean;
  private readonly cred: StorageSharedKeyCredential;
  private readonly service: BlobServiceClient;

  constructor(
    private readonly conf: AzureConfig,
    private readonly presign: boolean,
    private readonly opts: UploaderOptions = {},
  ) {
    this.customEndpoint = Boolean(opts.azureServiceUrl);
    this.cred = new StorageSharedKeyCredential(conf.account_name, conf.account_key);
    const url = opts.azureServiceUrl ?? `https://${conf.account_name}.blob.core.windows.net`;
    this.service = new BlobServiceClient(url, this.cred, {
      retryOptions: {
        retryPolicyType: StorageRetryPolicyType.EXPONENTIAL,
        maxTries: 5,
        maxRetryDelayInMs: Math.min(5000, opts.maxRetryDelayMs ?? 5000),
        retryDelayInMs: Math.min(100, opts.maxRetryDelayMs ?? 100),
        tryTimeoutInMs: 120_000,
      },
      keepAliveOptions: { enable: true },
    });
  }

  async upload(obj: ObjectUpload): Promise<ObjectResult> {
    const { size } = await stat(obj.localPath);
    try {
      const blob = this.service.getContainerClient(this.conf.container_name).getBlockBlobClient(obj.storagePath);
      const blockSize = partSizeFor(size, this.opts.partSizeBytes, 50_000, 1024 * 1024);
      const parallel = Math.max(1, this.opts.parallelParts ?? 2);
      await blob.uploadStream(createReadStream(obj.localPath, { highWaterMark: 1024 * 1024 }), blockSize, parallel, {
        blobHTTPHeaders: { blobContentType: obj.contentType },
        onProgress: (p) => obj.onProgress?.(p.loadedBytes, size),
      });
      let location = azureLocation(this.conf, obj.storagePath);
      if (this.presign) {
        const sas = generateBlobSASQueryParameters(
          {
            containerName: this.conf.container_name,
            blobName: obj.storagePath,
            permissions: BlobSASPermissions.parse('r'),
            startsOn: new Date(Date.now() - 5 * 60_000),
            expiresOn: new Date(Date.now() + PRESIGN_EXPIRY_MS),
          },
          this.cred,
        ).toString();
        location = `${blob.url}?${sas}`;
      }
      return { location, size };
    } catch (err) {
      throw toProviderError(err);
    }
  }
}
