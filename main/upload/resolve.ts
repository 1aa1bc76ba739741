import type {
  AliOSSUpload,
  AzureBlobUpload,
  GCPUpload,
  ProxyConfig as ProtoProxyConfig,
  S3Upload,
  StorageConfig as ProtoStorageConfig,
} from '@livekit/protocol';
import type { StoragePlan } from '../contracts/pipeline.js';
import type { ProxyConfig, S3Config, StorageConfig, UploadTarget } from '../contracts/storage.js';
import { EgressError, errInvalidField } from '../contracts/errors.js';

/**
 * Storage resolution: per-output → per-request → service config → local.
 * A per-request upload config replaces the service config entirely, except that the service
 * `storage.prefix` and `storage.generate_presigned_url` are always applied and S3 retry settings
 * are copied from the service S3 config (defaults: 5 retries, 5 s max delay, 100 ms min delay).
 */

/**
 * The `provider` oneof of @livekit/protocol's StorageConfig. v1 outputs' deprecated `output` oneof
 * (EncodedFileOutput, SegmentedFileOutput, ImageOutput, DirectFileOutput) uses the same case names,
 * so those are accepted too (any other case, e.g. a v1 `websocketUrl`, counts as "not set").
 */
export type StorageProvider = ProtoStorageConfig['provider'];
export type StorageProviderLike =
  | StorageProvider
  | { readonly case: string | undefined; readonly value?: unknown }
  | undefined;

/** The service-config pieces storage resolution needs. */
export interface ServiceStorageSettings {
  readonly storage?: StorageConfig | undefined;
  readonly s3AssumeRoleKey?: string | undefined;
  readonly s3AssumeRoleSecret?: string | undefined;
  readonly s3AssumeRoleArn?: string | undefined;
  readonly s3AssumeRoleExternalId?: string | undefined;
  readonly disallowLocalStorage?: boolean | undefined;
}

/** Per-request S3 retry defaults (original `getStorageConfig`). */
export const REQUEST_S3_DEFAULT_MAX_RETRIES = 5;
export const REQUEST_S3_DEFAULT_MAX_RETRY_DELAY_MS = 5000;
export const REQUEST_S3_DEFAULT_MIN_RETRY_DELAY_MS = 100;

/** `S3 upload using AssumeRole is disabled for this account` (403 / permission_denied). */
export function errAssumeRoleDisabled(): EgressError {
  return new EgressError('E_INVALID_INPUT', 'permission_denied', 'S3 upload using AssumeRole is disabled for this account');
}

type KnownProvider =
  | { case: 's3'; value: S3Upload }
  | { case: 'gcp'; value: GCPUpload }
  | { case: 'azure'; value: AzureBlobUpload }
  | { case: 'aliOSS'; value: AliOSSUpload };

function asKnown(p: StorageProviderLike): KnownProvider | null {
  if (!p || p.value === undefined || p.value === null) return null;
  switch (p.case) {
    case 's3':
    case 'gcp':
    case 'azure':
    case 'aliOSS':
      return p as KnownProvider;
    default:
      return null;
  }
}

/** True when the oneof carries an upload config (s3/gcp/azure/aliOSS). */
export function hasUploadConfig(p: StorageProviderLike): boolean {
  return asKnown(p) !== null;
}

function proxyFrom(p: ProtoProxyConfig | undefined): ProxyConfig | undefined {
  if (!p || !p.url) return undefined;
  return { url: p.url, username: p.username ?? '', password: p.password ?? '' };
}

/** A service-config storage section reduced to its upload target (null = no provider = local). */
export function targetFromConfig(storage: StorageConfig | undefined): UploadTarget | null {
  if (!storage) return null;
  if (storage.s3) return { kind: 's3', s3: storage.s3 };
  if (storage.azure) return { kind: 'azure', azure: storage.azure };
  if (storage.gcp) return { kind: 'gcp', gcp: storage.gcp };
  if (storage.alioss) return { kind: 'alioss', alioss: storage.alioss };
  return null;
}

function s3FromRequest(req: S3Upload, service: ServiceStorageSettings): S3Config {
  const serviceS3 = service.storage?.s3;
  let assumeRoleArn = req.assumeRoleArn ?? '';
  let assumeRoleExternalId = req.assumeRoleExternalId ?? '';
  let accessKey = req.accessKey ?? '';
  let secret = req.secret ?? '';
  if (!assumeRoleArn && service.s3AssumeRoleArn) {
    assumeRoleArn = service.s3AssumeRoleArn;
    assumeRoleExternalId = service.s3AssumeRoleExternalId ?? '';
  }
  if (assumeRoleArn && !accessKey) {
    if (service.s3AssumeRoleKey && service.s3AssumeRoleSecret) {
      accessKey = service.s3AssumeRoleKey;
      secret = service.s3AssumeRoleSecret;
    } else {
      throw errAssumeRoleDisabled();
    }
  }
  const cfg: S3Config = {
    access_key: accessKey,
    secret,
    session_token: req.sessionToken ?? '',
    assume_role_arn: assumeRoleArn,
    assume_role_external_id: assumeRoleExternalId,
    region: req.region ?? '',
    endpoint: req.endpoint ?? '',
    bucket: req.bucket ?? '',
    force_path_style: req.forcePathStyle ?? false,
    metadata: { ...(req.metadata ?? {}) },
    tagging: req.tagging ?? '',
    content_disposition: req.contentDisposition ?? '',
    max_retries: serviceS3?.max_retries || REQUEST_S3_DEFAULT_MAX_RETRIES,
    max_retry_delay: serviceS3?.max_retry_delay || REQUEST_S3_DEFAULT_MAX_RETRY_DELAY_MS,
    min_retry_delay: serviceS3?.min_retry_delay || REQUEST_S3_DEFAULT_MIN_RETRY_DELAY_MS,
  };
  const proxy = proxyFrom(req.proxy);
  return proxy ? { ...cfg, proxy_config: proxy } : cfg;
}

/**
 * Converts a per-request upload config (proto) into an UploadTarget, with the original's precedence:
 * per-output, then per-request, then the service config, then local.
 */
export function targetFromRequest(p: StorageProviderLike, service: ServiceStorageSettings): UploadTarget | null {
  const known = asKnown(p);
  if (!known) return null;
  switch (known.case) {
    case 's3':
      return { kind: 's3', s3: s3FromRequest(known.value, service) };
    case 'gcp': {
      const proxy = proxyFrom(known.value.proxy);
      return {
        kind: 'gcp',
        gcp: {
          credentials_json: known.value.credentials ?? '',
          bucket: known.value.bucket ?? '',
          ...(proxy ? { proxy_config: proxy } : {}),
        },
      };
    }
    case 'azure':
      return {
        kind: 'azure',
        azure: {
          account_name: known.value.accountName ?? '',
          account_key: known.value.accountKey ?? '',
          container_name: known.value.containerName ?? '',
        },
      };
    case 'aliOSS':
      return {
        kind: 'alioss',
        alioss: {
          access_key: known.value.accessKey ?? '',
          secret: known.value.secret ?? '',
          region: known.value.region ?? '',
          endpoint: known.value.endpoint ?? '',
          bucket: known.value.bucket ?? '',
        },
      };
  }
}

/**
 * Resolves where one output goes. Throws EgressError:
 * - `S3 upload using AssumeRole is disabled for this account` (permission_denied) for an S3 request
 *   with an assume-role ARN, no access key, and no service assume-role key/secret;
 * - `request has missing or invalid field: output` when it would be local storage while
 *   `disallow_local_storage` is set.
 */
export function resolveStoragePlan(
  perOutput: StorageProviderLike,
  perRequest: StorageProviderLike,
  service: ServiceStorageSettings,
): StoragePlan {
  const prefix = service.storage?.prefix ?? '';
  const generatePresignedUrl = service.storage?.generate_presigned_url ?? false;
  const requested = hasUploadConfig(perOutput) ? perOutput : hasUploadConfig(perRequest) ? perRequest : undefined;
  let target: UploadTarget | null;
  if (requested) {
    target = targetFromRequest(requested, service);
  } else {
    target = targetFromConfig(service.storage);
  }
  if (target === null && service.disallowLocalStorage) throw errInvalidField('output');
  return { target, prefix, generatePresignedUrl };
}

/** Resolves the backup storage (config `backup`) to a plan; null when none or no provider. */
export function resolveBackupPlan(backup: StorageConfig | undefined): StoragePlan | null {
  const target = targetFromConfig(backup);
  if (!backup || !target) return null;
  return { target, prefix: backup.prefix ?? '', generatePresignedUrl: backup.generate_presigned_url ?? false };
}

// ---------------------------------------------------------------------------------------------
// Redaction: secrets in an echoed request become placeholders.

export const REDACTED = {
  accessKey: '{access_key}',
  secret: '{secret}',
  sessionToken: '{session_token}',
  externalId: '{external_id}',
  credentials: '{credentials}',
  accountName: '{account_name}',
  accountKey: '{account_key}',
  proxyPassword: '{proxy_password}',
} as const;

function red(v: string | undefined, placeholder: string): string {
  return v ? placeholder : (v ?? '');
}

function redactProxyInPlace(p: ProtoProxyConfig | undefined): void {
  if (p && p.password) p.password = REDACTED.proxyPassword;
}

/** Replaces the secrets of one proto upload config, in place. */
export function redactStorageProviderInPlace(p: StorageProviderLike): void {
  const known = asKnown(p);
  if (!known) return;
  switch (known.case) {
    case 's3': {
      const v = known.value;
      v.accessKey = red(v.accessKey, REDACTED.accessKey);
      v.secret = red(v.secret, REDACTED.secret);
      v.sessionToken = red(v.sessionToken, REDACTED.sessionToken);
      v.assumeRoleExternalId = red(v.assumeRoleExternalId, REDACTED.externalId);
      redactProxyInPlace(v.proxy);
      return;
    }
    case 'gcp':
      known.value.credentials = red(known.value.credentials, REDACTED.credentials);
      redactProxyInPlace(known.value.proxy);
      return;
    case 'azure':
      known.value.accountName = red(known.value.accountName, REDACTED.accountName);
      known.value.accountKey = red(known.value.accountKey, REDACTED.accountKey);
      return;
    case 'aliOSS':
      known.value.accessKey = red(known.value.accessKey, REDACTED.accessKey);
      known.value.secret = red(known.value.secret, REDACTED.secret);
      return;
  }
}

const PROVIDER_CASES = new Set(['s3', 'gcp', 'azure', 'aliOSS']);

/**
 * Walks a request message (e.g. a clone of StartEgressRequest's payload about to be echoed in
 * EgressInfo) and redacts every upload config it contains, in place. Works on protobuf-es messages
 * and plain objects alike: any `{ case: 's3'|'gcp'|'azure'|'aliOSS', value }` oneof is redacted.
 * Returns its argument. Clone first (`msg.clone()`) if the original must stay intact.
 */
export function redactStorageSecretsInPlace<T>(msg: T): T {
  const seen = new Set<unknown>();
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (node instanceof Uint8Array) return;
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    const rec = node as Record<string, unknown>;
    if (typeof rec['case'] === 'string' && PROVIDER_CASES.has(rec['case']) && rec['value'] && typeof rec['value'] === 'object') {
      redactStorageProviderInPlace(rec as StorageProviderLike);
    }
    for (const key of Object.keys(rec)) walk(rec[key]);
  };
  walk(msg);
  return msg;
}

/** A copy of an UploadTarget with every secret replaced (for logs and debug output). */
export function redactUploadTarget(target: UploadTarget | null): UploadTarget | null {
  if (!target) return null;
  const proxy = (p: ProxyConfig | undefined): ProxyConfig | undefined =>
    p ? { ...p, password: red(p.password, REDACTED.proxyPassword) } : undefined;
  switch (target.kind) {
    case 's3': {
      const s3: S3Config = {
        ...target.s3,
        access_key: red(target.s3.access_key, REDACTED.accessKey),
        secret: red(target.s3.secret, REDACTED.secret),
        session_token: red(target.s3.session_token, REDACTED.sessionToken),
        assume_role_external_id: red(target.s3.assume_role_external_id, REDACTED.externalId),
      };
      const p = proxy(target.s3.proxy_config);
      return { kind: 's3', s3: p ? { ...s3, proxy_config: p } : s3 };
    }
    case 'gcp': {
      const p = proxy(target.gcp.proxy_config);
      const gcp = { ...target.gcp, credentials_json: red(target.gcp.credentials_json, REDACTED.credentials) };
      return { kind: 'gcp', gcp: p ? { ...gcp, proxy_config: p } : gcp };
    }
    case 'azure':
      return {
        kind: 'azure',
        azure: {
          ...target.azure,
          account_name: red(target.azure.account_name, REDACTED.accountName),
          account_key: red(target.azure.account_key, REDACTED.accountKey),
        },
      };
    case 'alioss':
      return {
        kind: 'alioss',
        alioss: {
          ...target.alioss,
          access_key: red(target.alioss.access_key, REDACTED.accessKey),
          secret: red(target.alioss.secret, REDACTED.secret),
        },
      };
    case 'local':
      return target;
  }
}

/** Every secret string an UploadTarget carries (non-empty), e.g. to scrub them from error texts. */
export function secretsOf(target: UploadTarget | null): string[] {
  if (!target) return [];
  const out: string[] = [];
  const add = (...v: (string | undefined)[]): void => {
    for (const s of v) if (s && s.length >= 4) out.push(s);
  };
  switch (target.kind) {
    case 's3':
      add(target.s3.access_key, target.s3.secret, target.s3.session_token, target.s3.assume_role_external_id, target.s3.proxy_config?.password);
      break;
    case 'gcp':
      add(target.gcp.credentials_json, target.gcp.proxy_config?.password);
      try {
        const parsed: unknown = JSON.parse(target.gcp.credentials_json);
        if (parsed && typeof parsed === 'object') {
          const rec = parsed as Record<string, unknown>;
          for (const k of ['private_key', 'private_key_id', 'client_secret', 'refresh_token']) {
            const v = rec[k];
            if (typeof v === 'string') add(v);
          }
        }
      } catch {
        /* not JSON: the whole string is already listed */
      }
      break;
    case 'azure':
      add(target.azure.account_key);
      break;
    case 'alioss':
      add(target.alioss.access_key, target.alioss.secret);
      break;
    case 'local':
      break;
  }
  return out;
}
