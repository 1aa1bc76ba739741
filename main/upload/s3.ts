import { createHash, createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { GetBucketLocationCommand, S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/nested-clients/sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, Checksum, RetryErrorInfo, RetryStrategyV2, RetryToken, SourceData } from '@smithy/types';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { HttpProxyAgent } from 'http-proxy-agent';
import type { S3Config } from '../contracts/storage.js';
import { partSizeFor, ProviderError, type ObjectResult, type ObjectUpload, type Uploader, type UploaderOptions } from './types.js';

export const PRESIGN_EXPIRY_S = 7 * 24 * 3600;
const DEFAULT_ENDPOINT = 's3.amazonaws.com';

/** Exponential backoff between min and max delay; retries transient/throttling/5xx plus 409 and 429. */
class BackoffRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';
  constructor(
    private readonly maxAttempts: number,
    private readonly minDelayMs: number,
    private readonly maxDelayMs: number,
  ) {}
  private token(count: number, delay: number): RetryToken {
    return { getRetryCount: () => count, getRetryDelay: () => delay };
  }
  async acquireInitialRetryToken(): Promise<RetryToken> {
    return this.token(0, 0);
  }
  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const count = token.getRetryCount() + 1;
    const status = (info.error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
    const retryable = info.errorType !== 'CLIENT_ERROR' || status === 409 || status === 429;
    if (!retryable || count >= this.maxAttempts) throw info.error ?? new Error('retries exhausted');
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** (count - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    return this.token(count, delay);
  }
  recordSuccess(): void {}
}

class NodeSha256 implements Checksum {
  private h;
  constructor(private readonly secret?: SourceData) {
    this.h = this.make();
  }
  private make() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuf(this.secret));
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.make();
  }
}
function toBuf(d: SourceData): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

function withScheme(endpoint: string): string {
  return /^[a-z]+:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
}
function stripScheme(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

/** Location as the original returns it. */
export function s3Location(conf: Pick<S3Config, 'bucket' | 'endpoint' | 'force_path_style'>, key: string): string {
  if (conf.force_path_style) {
    const ep = withScheme(conf.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
    return `${ep}/${conf.bucket}/${key}`;
  }
  return `https://${conf.bucket}.${stripScheme(conf.endpoint || DEFAULT_ENDPOINT)}/${key}`;
}

function proxyHandler(conf: S3Config): NodeHttpHandler | undefined {
  const p = conf.proxy_config;
  if (!p || !p.url) return undefined;
  const u = new URL(p.url);
  if (p.username) {
    u.username = encodeURIComponent(p.username);
    u.password = encodeURIComponent(p.password);
  }
  return new NodeHttpHandler({ httpsAgent: new HttpsProxyAgent(u), httpAgent: new HttpProxyAgent(u) });
}

function assumeRoleProvider(conf: S3Config, region: string, handler: NodeHttpHandler | undefined): AwsCredentialIdentityProvider {
  let cached: AwsCredentialIdentity | null = null;
  return async () => {
    if (cached && cached.expiration && cached.expiration.getTime() - Date.now() > 60_000) return cached;
    const sts = new STSClient({
      region: region || 'us-east-1',
      credentials: { accessKeyId: conf.access_key, secretAccessKey: conf.secret, ...(conf.session_token ? { sessionToken: conf.session_token } : {}) },
      ...(handler ? { requestHandler: handler } : {}),
    });
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: conf.assume_role_arn,
        RoleSessionName: `egress-${Date.now()}`,
        ...(conf.assume_role_external_id ? { ExternalId: conf.assume_role_external_id } : {}),
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new ProviderError('AssumeRole returned no credentials', 403);
    cached = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
    return cached;
  };
}

function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof S3ServiceException) {
    const status = err.$metadata?.httpStatusCode;
    const msg = err.message && err.message !== 'UnknownError' ? err.message : `${err.name}${status ? ` (${status})` : ''}`;
    return new ProviderError(msg, status);
  }
  const e = err as { message?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  return new ProviderError(typeof e?.message === 'string' ? e.message : String(err), e?.$metadata?.httpStatusCode);
}

export class S3Uploader implements Uploader {
  readonly label = 'S3' as const;
  readonly customEndpoint: boolean;
  private client: S3Client | null = null;
  private region: string;

  constructor(
    private readonly conf: S3Config,
    private readonly presign: boolean,
    private readonly opts: UploaderOptions = {},
  ) {
    this.customEndpoint = conf.endpoint !== '';
    this.region = conf.region;
  }

  private baseConfig(region: string): S3ClientConfig {
    const c = this.conf;
    const handler = proxyHandler(c);
    const maxDelay = Math.min(c.max_retry_delay ?? 5000, this.opts.maxRetryDelayMs ?? Infinity);
    const cfg: S3ClientConfig = {
      region,
      forcePathStyle: c.force_path_style,
      ...(c.endpoint ? { endpoint: withScheme(c.endpoint) } : {}),
      ...(handler ? { requestHandler: handler } : {}),
      // Checksums on every request break some S3-compatible stores; only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (c.max_retries > 0) {
      cfg.retryStrategy = new BackoffRetryStrategy(c.max_retries, c.min_retry_delay ?? 100, maxDelay);
    }
    if (c.access_key) {
      cfg.credentials = c.assume_role_arn
        ? assumeRoleProvider(c, region, handler)
        : { accessKeyId: c.access_key, secretAccessKey: c.secret, ...(c.session_token ? { sessionToken: c.session_token } : {}) };
    }
    return cfg;
  }

  /** Region: configured, else discovered with GetBucketLocation when there is no endpoint (fallback us-east-1). */
  private async getClient(): Promise<S3Client> {
    if (this.client) return this.client;
    if (!this.region) {
      this.region = 'us-east-1';
      if (!this.conf.endpoint) {
        const probe = new S3Client(this.baseConfig('us-east-1'));
        try {
          const out = await probe.send(new GetBucketLocationCommand({ Bucket: this.conf.bucket }));
          const lc = out.LocationConstraint as string | undefined;
          this.region = !lc ? 'us-east-1' : lc === 'EU' ? 'eu-west-1' : lc;
        } catch {
          this.region = 'us-east-1';
        } finally {
          probe.destroy();
        }
      }
    }
    this.client = new S3Client(this.baseConfig(this.region));
    return this.client;
  }

  async upload(obj: ObjectUpload): Promise<ObjectResult> {
    const { size } = await stat(obj.localPath);
    try {
      const client = await this.getClient();
      const partSize = partSizeFor(size, this.opts.partSizeBytes, 10_000, 5 * 1024 * 1024);
      const up = new Upload({
        client,
        queueSize: Math.max(1, this.opts.parallelParts ?? 2),
        partSize,
        leavePartsOnError: false,
        params: {
          Bucket: this.conf.bucket,
          Key: obj.storagePath,
          Body: createReadStream(obj.localPath, { highWaterMark: 1024 * 1024 }),
          ContentType: obj.contentType,
          ContentLength: size,
          ContentDisposition: this.conf.content_disposition || 'inline',
          ...(Object.keys(this.conf.metadata).length ? { Metadata: this.conf.metadata } : {}),
          ...(this.conf.tagging ? { Tagging: this.conf.tagging } : {}),
        },
      });
      up.on('httpUploadProgress', (p) => obj.onProgress?.(p.loaded ?? 0, size));
      await up.done();
      const location = this.presign ? await this.presignedUrl(client, obj.storagePath) : s3Location(this.conf, obj.storagePath);
      return { location, size };
    } catch (err) {
      throw toProviderError(err);
    }
  }

  private async presignedUrl(client: S3Client, key: string): Promise<string> {
    const creds = await client.config.credentials();
    const signer = new SignatureV4({ credentials: creds, region: this.region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const base = new URL(this.conf.endpoint ? withScheme(this.conf.endpoint) : `https://${DEFAULT_ENDPOINT}`);
    const encKey = key.split('/').map(encodeURIComponent).join('/');
    const pathStyle = this.conf.force_path_style;
    const hostname = pathStyle ? base.hostname : `${this.conf.bucket}.${this.conf.endpoint ? base.hostname : `s3.${this.region}.amazonaws.com`}`;
    const basePath = base.pathname.replace(/\/+$/, '');
    const path = pathStyle ? `${basePath}/${this.conf.bucket}/${encKey}` : `${basePath}/${encKey}`;
    const host = base.port ? `${hostname}:${base.port}` : hostname;
    const signed = await signer.presign(
      { method: 'GET', protocol: base.protocol, hostname, port: base.port ? Number(base.port) : undefined, path, headers: { host }, query: {} },
      { expiresIn: PRESIGN_EXPIRY_S },
    );
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(signed.query ?? {})) if (typeof v === 'string') qs.set(k, v);
    return `${base.protocol}//${host}${path}?${qs.toString()}`;
  }
}
