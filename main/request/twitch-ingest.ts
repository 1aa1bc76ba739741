import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { logger } from '../log.js';
import { TWITCH_INGESTS_URL } from './urls.js';

const log = logger('twitch');

/**
 * Where `twitch://<key>` (and `*.contribute.live-video.net` URLs) publish. The
 * original fetches Twitch's ingest list while validating a request; here validation never goes to
 * the network: the template comes from `twitch_ingest_template` in the config, else from a cached
 * copy of Twitch's ingest list (`twitch_ingests_file`, refreshed in the background by `egress serve`
 * when older than a day), else Twitch's auto-routing ingest (DEFAULT_TWITCH_TEMPLATE in urls.ts).
 */

export interface TwitchConfig {
  readonly twitch_ingest_template: string;
  readonly twitch_ingests_file: string;
}

/** Twitch's `GET /ingests` answer, as much of it as is used. */
const ingestsSchema = z.object({
  ingests: z.array(z.object({ url_template: z.string().optional(), url_template_secure: z.string().optional() }).passthrough()),
});

/** The original's choice: the first ingest's `url_template_secure`, else its `url_template`. */
export function templateFromIngests(body: unknown): string | null {
  const parsed = ingestsSchema.safeParse(body);
  if (!parsed.success) return null;
  for (const ingest of parsed.data.ingests) {
    const t = ingest.url_template_secure || ingest.url_template;
    if (t && t.includes('{stream_key}')) return t;
  }
  return null;
}

let cached: { file: string; mtimeMs: number; template: string | null } | null = null;

/** The ingest template for this config; undefined = the default (auto-routing) ingest. Reads at most a local file. */
export function twitchTemplateOf(cfg: TwitchConfig): string | undefined {
  if (cfg.twitch_ingest_template) return cfg.twitch_ingest_template;
  const file = cfg.twitch_ingests_file;
  if (!file || !existsSync(file)) return undefined;
  try {
    const mtimeMs = statSync(file).mtimeMs;
    if (cached?.file !== file || cached.mtimeMs !== mtimeMs) {
      cached = { file, mtimeMs, template: templateFromIngests(JSON.parse(readFileSync(file, 'utf8'))) };
      if (!cached.template) log.warn(`${file} holds no Twitch ingest with {stream_key}: using the default ingest`);
    }
    return cached.template ?? undefined;
  } catch (err) {
    log.warn(`cannot read ${file}: ${(err as Error).message}; using the default Twitch ingest`);
    return undefined;
  }
}

export const TWITCH_INGESTS_MAX_AGE_MS = 24 * 3600_000;

/**
 * Refreshes the cached ingest list when it is missing or older than `maxAgeMs` (never while a
 * request is validated). Returns whether the file was written; a failed fetch keeps the old copy.
 */
export async function refreshTwitchIngests(file: string, fetchImpl: typeof fetch = fetch, maxAgeMs = TWITCH_INGESTS_MAX_AGE_MS): Promise<boolean> {
  if (existsSync(file) && Date.now() - statSync(file).mtimeMs < maxAgeMs) return false;
  try {
    const res = await fetchImpl(TWITCH_INGESTS_URL, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body: unknown = await res.json();
    if (!templateFromIngests(body)) throw new Error('no ingest with a url_template');
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(body));
    await rename(tmp, file);
    log.info(`Twitch ingest list cached in ${file}`);
    return true;
  } catch (err) {
    log.warn(`cannot refresh the Twitch ingest list (${(err as Error).message}); ${existsSync(file) ? 'keeping the cached copy' : 'twitch:// uses the default ingest'}`);
    return false;
  }
}
