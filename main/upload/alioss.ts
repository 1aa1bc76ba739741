import { createHmac } from 'node:crypto';
import { stat } from 'node:fs/promises';
import OSS from 'ali-oss';
import type { AliOssConfig } from '../contracts/storage.js';
import { partSizeFor, ProviderError, type ObjectResult, type ObjectUpload, type Uploader, type UploaderOptions } from './types.js';

const PRESIGN_EXPIRY_S = 7 * 24 * 3600;

function stripScheme(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

function isLocalHost(endpoint: string): boolean {
  const host = stripScheme(endpoint).split('/')[0]?.replace(/:\d+$/, '') ?? '';
  return host === 'localhost' || /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[');
}

/** `https://<bucket>.<endpoint>/<key>`. */
export function aliOssLocation(conf: Pick<AliOssConfig, 'bucket' | 'endpoint'>, key: string): string {
  return `https://${conf.bucket}.${stripScheme(conf.endpoint)}/${key}`;
}

function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { message?: unknown; status?: unknown; code?: unknown; name?: unknown } | null;
  const status = typeof e?.status === 'number' && e.status > 0 ? e.status : undefined;
  let msg = typeof e?.message === 'string' ? e.message : String(err);
  // ali-oss appends request details on new lines; keep the first line only.
  msg = msg.split('\n')[0] ?? msg;
  // …and urllib adds socket/agent statistics.
  msg = msg.replace(/ -?\d* ?\(connected: .*$/, '');
  const code = typeof e?.code === 'string' && e.code && !msg.includes(e.code) ? `${e.code}: ` : '';
  return new ProviderError(`${code}${msg}`, status);
}

/** Multipart upload (parts of partSize, `parallel` in flight) for big files; a single PUT for small ones. */
export class AliOssUploader implements Uploader {
  readonly label = 'AliOSS' as const;
  readonly customEndpoint = true;
  private readonly client: OSS;

  constructor(
    private readonly conf: AliOssConfig,
    private readonly presign: boolean,
    private readonly opts: UploaderOptions = {},
  ) {
    this.client = new OSS({
      accessKeyId: conf.access_key,
      accessKeySecret: conf.secret,
      bucket: conf.bucket,
      endpoint: conf.endpoint,
      ...(conf.region ? { region: conf.region } : {}),
      // Path-style (`/<bucket>/<key>`) for IP/localhost endpoints (S3-like local stores), virtual host otherwise.
      sldEnable: isLocalHost(conf.endpoint),
      timeout: 120_000,
      retryMax: 3,
    } as OSS.Options);
  }

  async upload(obj: ObjectUpload): Promise<ObjectResult> {
    const { size } = await stat(obj.localPath);
    try {
      const partSize = partSizeFor(size, this.opts.partSizeBytes, 10_000, 100 * 1024);
      await this.client.multipartUpload(obj.storagePath, obj.localPath, {
        partSize,
        parallel: Math.max(1, this.opts.parallelParts ?? 2),
        mime: obj.contentType,
        headers: { 'Content-Type': obj.contentType },
        // called with the fraction of parts done
        progress: (fraction: number) => obj.onProgress?.(Math.round(fraction * size), size),
      });
      const location = this.presign ? this.presignedUrl(obj.storagePath) : aliOssLocation(this.conf, obj.storagePath);
      return { location, size };
    } catch (err) {
      throw toProviderError(err);
    }
  }

  /**
   * OSS V1 query-string signed GET URL valid 7 days (what `signatureUrl` produces; built here because
   * ali-oss refuses IP endpoints). Contains the access key id and a signature, never the secret.
   */
  private presignedUrl(key: string): string {
    const expires = Math.floor(Date.now() / 1000) + PRESIGN_EXPIRY_S;
    const resource = `/${this.conf.bucket}/${key}`;
    const signature = createHmac('sha1', this.conf.secret).update(`GET\n\n\n${expires}\n${resource}`).digest('base64');
    const ep = /^[a-z]+:\/\//i.test(this.conf.endpoint) ? this.conf.endpoint : `https://${this.conf.endpoint}`;
    const u = new URL(ep);
    const escaped = key.split('/').map(encodeURIComponent).join('/');
    const base = isLocalHost(this.conf.endpoint) ? `${u.protocol}//${u.host}/${this.conf.bucket}/${escaped}` : `${u.protocol}//${this.conf.bucket}.${u.host}/${escaped}`;
    const qs = new URLSearchParams({ OSSAccessKeyId: this.conf.access_key, Expires: String(expires), Signature: signature });
    return `${base}?${qs.toString()}`;
  }
}
