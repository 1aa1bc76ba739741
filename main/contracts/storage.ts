import { z } from 'zod';

/**
 * Storage destinations, as the YAML config (`storage:` and `backup:`) spells them. Per-request
 * upload configs (proto S3Upload/GCPUpload/AzureBlobUpload/AliOSSUpload) are converted into the same
 * shapes so one uploader factory serves both.
 */

/** Go duration (`5s`, `100ms`, `1m30s`) or a number of seconds → milliseconds. */
export const goDurationMs = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v * 1000;
  const ms = parseGoDurationMs(v);
  if (ms === null) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid duration "${v}"` });
    return z.NEVER;
  }
  return ms;
});

export function parseGoDurationMs(text: string): number | null {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (unit[m[2] as string] as number);
    matched = re.lastIndex;
  }
  return matched === s.length && s.length > 0 ? total : null;
}

export const proxyConfigSchema = z
  .object({
    url: z.string().default(''),
    username: z.string().default(''),
    password: z.string().default(''),
  })
  .strict();
export type ProxyConfig = z.infer<typeof proxyConfigSchema>;

export const s3ConfigSchema = z
  .object({
    access_key: z.string().default(''),
    secret: z.string().default(''),
    session_token: z.string().default(''),
    assume_role_arn: z.string().default(''),
    assume_role_external_id: z.string().default(''),
    region: z.string().default(''),
    endpoint: z.string().default(''),
    bucket: z.string().default(''),
    force_path_style: z.boolean().default(false),
    proxy_config: proxyConfigSchema.optional(),
    max_retries: z.number().int().nonnegative().default(0),
    max_retry_delay: goDurationMs.optional(),
    min_retry_delay: goDurationMs.optional(),
    aws_log_level: z.string().optional(),
    metadata: z.record(z.string()).default({}),
    tagging: z.string().default(''),
    content_disposition: z.string().default(''),
  })
  .strict();
export type S3Config = z.infer<typeof s3ConfigSchema>;

export const azureConfigSchema = z
  .object({
    account_name: z.string().default(''),
    account_key: z.string().default(''),
    container_name: z.string().default(''),
  })
  .strict();
export type AzureConfig = z.infer<typeof azureConfigSchema>;

export const gcpConfigSchema = z
  .object({
    credentials_json: z.string().default(''),
    bucket: z.string().default(''),
    proxy_config: proxyConfigSchema.optional(),
  })
  .strict();
export type GcpConfig = z.infer<typeof gcpConfigSchema>;

export const aliOssConfigSchema = z
  .object({
    access_key: z.string().default(''),
    secret: z.string().default(''),
    region: z.string().default(''),
    endpoint: z.string().default(''),
    bucket: z.string().default(''),
  })
  .strict();
export type AliOssConfig = z.infer<typeof aliOssConfigSchema>;

/** The YAML `storage:` / `backup:` section. At most one provider is meant to be set. */
export const storageConfigSchema = z
  .object({
    prefix: z.string().default(''),
    generate_presigned_url: z.boolean().default(false),
    s3: s3ConfigSchema.optional(),
    azure: azureConfigSchema.optional(),
    gcp: gcpConfigSchema.optional(),
    alioss: aliOssConfigSchema.optional(),
  })
  .strict();
export type StorageConfig = z.infer<typeof storageConfigSchema>;

/** One resolved destination: what an uploader is built from. */
export type UploadTarget =
  | { readonly kind: 's3'; readonly s3: S3Config }
  | { readonly kind: 'gcp'; readonly gcp: GcpConfig }
  | { readonly kind: 'azure'; readonly azure: AzureConfig }
  | { readonly kind: 'alioss'; readonly alioss: AliOssConfig }
  | { readonly kind: 'local' };
