import { EgressError, errInvalidField, errInvalidInput } from '../contracts/errors.js';
import type { StreamProtocolKind, StreamUrlPlan } from '../contracts/pipeline.js';

/**
 * Stream URL validation and redaction.
 */

/** rtmp(s)://{host}(/{path})/{app}/{stream_key}( live=1) */
const RTMP_RE = /^(rtmps?:\/\/)(.*\/)(.*\/)(\S*)( live=1)?$/;
const TWITCH_ENDPOINT_RE = /^rtmps?:\/\/.*\.contribute\.live-video\.net\/app\/(.*)( live=1)?$/;
export const RTMP_FORMAT_TEXT = 'rtmp urls must be of format rtmp(s)://{host}(/{path})/{app}/{stream_key}( live=1)';
export const MUX_INGEST = 'rtmps://global-live.mux.com:443/app/';
/** Used for `twitch://<key>` when no ingest template was fetched (Twitch's auto-routing ingest). */
export const DEFAULT_TWITCH_TEMPLATE = 'rtmps://live.twitch.tv:443/app/{stream_key}';
export const TWITCH_INGESTS_URL = 'https://ingest.twitch.tv/ingests';

/** Scheme → stream kind (`rtmp`, `rtmps`, `mux`, `twitch` → RTMP; `srt`; `ws`/`wss` → WebSocket). */
export const STREAM_SCHEMES: Readonly<Record<string, StreamProtocolKind>> = {
  rtmp: 'rtmp',
  rtmps: 'rtmp',
  mux: 'rtmp',
  twitch: 'rtmp',
  srt: 'srt',
  ws: 'websocket',
  wss: 'websocket',
};

export function errInvalidUrl(url: string, reason: string): EgressError {
  return errInvalidInput(`invalid url ${url}: ${reason}`);
}

/** `{` + first k + `...` + last k + `}`, k = 3 if len ≥ 9, 2 if ≥ 6, 1 if ≥ 3, else 0. */
export function redactIdentifier(id: string): string {
  const chars = [...id];
  for (let k = 3; k > 0; k--) {
    if (chars.length >= k * 3) return `{${chars.slice(0, k).join('')}...${chars.slice(-k).join('')}}`;
  }
  return '{...}';
}

/** RTMP URL with its stream key redacted; null when the URL is not of the RTMP form. */
export function redactRtmpUrl(url: string): { redacted: string; streamKey: string } | null {
  const m = RTMP_RE.exec(url);
  if (!m) return null;
  const key = m[4] ?? '';
  return { redacted: `${m[1]}${m[2]}${m[3]}${redactIdentifier(key)}${m[5] ?? ''}`, streamKey: key };
}

interface ParsedUrl {
  readonly scheme: string;
  /** Text between `scheme://` and the next `/`, `?` or `#`. */
  readonly host: string;
}

/** A minimal URL split that accepts what Go's url.Parse accepts for these schemes. */
function parseUrl(raw: string): ParsedUrl | EgressError {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) {
    return errInvalidUrl(raw, `parse "${raw}": net/url: invalid control character in URL`);
  }
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(raw);
  if (!m) return { scheme: '', host: '' };
  const rest = m[2] ?? '';
  const host = rest.startsWith('//') ? (/^\/\/([^/?#]*)/.exec(rest)?.[1] ?? '') : '';
  return { scheme: (m[1] ?? '').toLowerCase(), host };
}

/** Stream kind of a DEFAULT_PROTOCOL output, from its first URL. */
export function protocolFromUrl(raw: string): StreamProtocolKind {
  const p = parseUrl(raw);
  if (p instanceof EgressError) throw p;
  const kind = STREAM_SCHEMES[p.scheme];
  if (!kind) throw errInvalidUrl(raw, 'invalid protocol');
  return kind;
}

export interface StreamUrlOptions {
  /** Twitch ingest template with `{stream_key}` (see twitch-ingest.ts); default DEFAULT_TWITCH_TEMPLATE. */
  readonly twitchTemplate?: string | undefined;
}

/** Validates one stream URL for an output of the given kind. Throws the original's texts. */
export function validateStreamUrl(raw: string, kind: StreamProtocolKind, opts: StreamUrlOptions = {}): StreamUrlPlan {
  const p = parseUrl(raw);
  if (p instanceof EgressError) throw p;
  if (STREAM_SCHEMES[p.scheme] !== kind) throw errInvalidUrl(raw, 'invalid scheme');

  switch (kind) {
    case 'rtmp': {
      let url = raw;
      const template = opts.twitchTemplate ?? DEFAULT_TWITCH_TEMPLATE;
      if (p.scheme === 'mux') {
        url = `${MUX_INGEST}${p.host}`;
      } else if (p.scheme === 'twitch') {
        url = template.split('{stream_key}').join(p.host);
      } else if (opts.twitchTemplate) {
        const m = TWITCH_ENDPOINT_RE.exec(raw);
        if (m) url = opts.twitchTemplate.split('{stream_key}').join(m[1] ?? '');
      }
      const r = redactRtmpUrl(url);
      if (!r) throw errInvalidUrl(raw, RTMP_FORMAT_TEXT);
      return { requestedUrl: raw, url, redactedUrl: r.redacted, streamKey: r.streamKey };
    }
    case 'srt':
    case 'websocket':
      // reported verbatim in StreamInfo (query values are redacted only in the echoed request)
      return { requestedUrl: raw, url: raw, redactedUrl: raw, streamKey: '' };
    default:
      throw errInvalidField('stream output type');
  }
}

/**
 * A stream URL as echoed in EgressInfo.request: RTMP stream keys and `mux://`/`twitch://`
 * keys redacted; SRT/WebSocket query values redacted; anything else unchanged.
 */
export function redactUrlForEcho(url: string): string {
  const rtmp = redactRtmpUrl(url);
  if (rtmp) return rtmp.redacted;
  const p = parseUrl(url);
  if (p instanceof EgressError) return url;
  if ((p.scheme === 'mux' || p.scheme === 'twitch') && p.host !== '') {
    const at = url.indexOf('//') + 2;
    return `${url.slice(0, at)}${redactIdentifier(p.host)}${url.slice(at + p.host.length)}`;
  }
  if (p.scheme === 'srt' || p.scheme === 'ws' || p.scheme === 'wss') return redactQueryValues(url);
  return url;
}

/** `?a=12145&token=7df1…2b9` → `?a={1...5}&token={7df...2b9}` (fragment kept). */
export function redactQueryValues(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const h = url.indexOf('#', q);
  const query = h < 0 ? url.slice(q + 1) : url.slice(q + 1, h);
  const tail = h < 0 ? '' : url.slice(h);
  const parts = query.split('&').map((kv) => {
    const eq = kv.indexOf('=');
    if (eq < 0) return kv;
    return `${kv.slice(0, eq + 1)}${redactIdentifier(safeDecode(kv.slice(eq + 1)))}`;
  });
  return `${url.slice(0, q + 1)}${parts.join('&')}${tail}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
