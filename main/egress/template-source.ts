import { AccessToken } from 'livekit-server-sdk';
import { errInvalidField } from '../contracts/errors.js';
import type { TemplateSourcePlan } from '../contracts/pipeline.js';

/**
 * What a room-composite template page is given: the base URL (custom_base_url or
 * template_base) with `layout`, `url` and `token` set, any other query parameters kept. The token
 * is the recorder's: identity = egress id, hidden, subscribe-only, valid 24 h.
 */

export const RECORDER_TOKEN_TTL_S = 24 * 60 * 60;

export interface RecorderCredentials {
  readonly apiKey: string;
  readonly apiSecret: string;
}

/** The recorder's join token for `roomName` (identity = egress id). */
export async function recorderToken(creds: RecorderCredentials, roomName: string, egressId: string): Promise<string> {
  const at = new AccessToken(creds.apiKey, creds.apiSecret, { identity: egressId, ttl: RECORDER_TOKEN_TTL_S });
  at.kind = 'egress';
  at.addGrant({
    roomJoin: true,
    room: roomName,
    canSubscribe: true,
    canPublish: false,
    canPublishData: false,
    hidden: true,
    recorder: true,
  });
  return at.toJwt();
}

/** The page URL: base with `layout`, `url` and `token` set (existing parameters kept). */
export function templatePageUrl(baseUrl: string, layout: string, wsUrl: string, token: string): string {
  const u = new URL(baseUrl);
  u.searchParams.set('layout', layout);
  u.searchParams.set('url', wsUrl);
  u.searchParams.set('token', token);
  return u.toString();
}

/**
 * Resolves the page URL of a template source: the envelope's token, or one minted from the
 * config's api key/secret. Throws the original's validation error when neither exists.
 */
export async function resolveTemplateUrl(source: TemplateSourcePlan, egressId: string, creds: RecorderCredentials): Promise<string> {
  let token = source.token ?? '';
  if (token === '') {
    if (creds.apiKey === '' || creds.apiSecret === '' || source.roomName === '') throw errInvalidField('token or api key/secret');
    token = await recorderToken(creds, source.roomName, egressId);
  }
  if (!source.wsUrl) throw errInvalidField('ws_url');
  return templatePageUrl(source.baseUrl, source.layout, source.wsUrl, token);
}

/** A page URL with its token replaced, for logs (tokens are secrets). */
export function redactPageUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.searchParams.has('token')) u.searchParams.set('token', '{token}');
    return u.toString();
  } catch {
    return '{invalid url}';
  }
}
