import { stat } from 'node:fs/promises';
import { IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { GcpConfig } from '../contracts/storage.js';
import { ProviderError, type ObjectResult, type ObjectUpload, type Uploader, type UploaderOptions } from './types.js';

const PRESIGN_EXPIRY_MS = 7 * 24 * 3600 * 1000;

/** `https://<bucket>.storage.googleapis.com/<key>`. */
export function gcsLocation(conf: Pick<GcpConfig, 'bucket'>, key: string): string {
  return `https://${conf.bucket}.storage.googleapis.com/${key}`;
}

function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { message?: unknown; code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  const status = [e?.code, e?.status, e?.response?.status].find((v): v is number => typeof v === 'number');
  return new ProviderError(typeof e?.message === 'string' ? e.message : String(err), status);
}

/** Resumable upload, retry always, backoff 100 ms → 5 s × 2, 5 attempts. */
export class GcsUploader implements Uploader {
  readonly label = 'GCP' as const;
  readonly customEndpoint: boolean;
  private readonly storage: Storage;

  constructor(
    private readonly conf: GcpConfig,
    private readonly presign: boolean,
    opts: UploaderOptions = {},
  ) {
    this.customEndpoint = Boolean(opts.gcpApiEndpoint);
    const so: StorageOptions = {
      retryOptions: {
        autoRetry: true,
        maxRetries: 4,
        retryDelayMultiplier: 2,
        maxRetryDelay: Math.max(1, Math.min(5, (opts.maxRetryDelayMs ?? 5000) / 1000)),
        totalTimeout: 600,
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
      },
    };
    if (opts.gcpApiEndpoint) so.apiEndpoint = opts.gcpApiEndpoint;
    if (conf.credentials_json) {
      let creds: Record<string, unknown>;
      try {
        creds = JSON.parse(conf.credentials_json) as Record<string, unknown>;
      } catch {
        // Never echo the credentials in the error.
        throw new ProviderError('invalid credentials JSON');
      }
      so.credentials = creds;
      if (typeof creds['project_id'] === 'string') so.projectId = creds['project_id'];
    }
    this.storage = new Storage(so);
    const proxy = conf.proxy_config;
    if (proxy && proxy.url) {
      const u = new URL(proxy.url);
      if (proxy.username) {
        u.username = encodeURIComponent(proxy.username);
        u.password = encodeURIComponent(proxy.password);
      }
      const agent = new HttpsProxyAgent(u);
      // Resumable uploads pass interceptor output to gaxios as request options; `agent` routes through the proxy.
      type Interceptor = Storage['interceptors'][number];
      const request = ((reqOpts: { agent?: unknown }) => {
        reqOpts.agent = agent;
        return reqOpts;
      }) as unknown as Interceptor['request'];
      this.storage.interceptors.push({ request });
    }
  }

  async upload(obj: ObjectUpload): Promise<ObjectResult> {
    const { size } = await stat(obj.localPath);
    try {
      const bucket = this.storage.bucket(this.conf.bucket);
      await bucket.upload(obj.localPath, {
        destination: obj.storagePath,
        resumable: true,
        contentType: obj.contentType,
        metadata: { contentType: obj.contentType },
        validation: false,
        onUploadProgress: (p: { bytesWritten: number }) => obj.onProgress?.(p.bytesWritten, size),
      });
      let location = gcsLocation(this.conf, obj.storagePath);
      if (this.presign) {
        const [url] = await bucket.file(obj.storagePath).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + PRESIGN_EXPIRY_MS });
        location = url;
      }
      return { location, size };
    } catch (err) {
      throw toProviderError(err);
    }
  }
}
