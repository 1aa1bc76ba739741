/**
 * psrpc channel names as used on Redis (the "Legacy" names of psrpc v0.7.2 `pkg/info/channels.go`):
 * parts joined with `|`, empty parts vanishing, each part sanitized.
 */

export const CHANNEL_SEPARATOR = '|';

function isChannelChar(cp: number): boolean {
  return (
    (cp >= 0x30 && cp <= 0x39) || // 0-9
    (cp >= 0x41 && cp <= 0x5a) || // A-Z
    cp === 0x5f || // _
    (cp >= 0x61 && cp <= 0x7a) // a-z
  );
}

/**
 * Sanitizes one channel part: `[0-9A-Za-z_]` passes, any other code point below U+10000 becomes
 * `u+xxxx`, higher ones `U+xxxxxxxx` (lowercase hex). Lone surrogates, which Go would see as
 * invalid UTF-8, become `u+fffd`.
 */
export function sanitizeChannelPart(s: string): string {
  let out = '';
  for (const ch of s) {
    let cp = ch.codePointAt(0) ?? 0xfffd;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (isChannelChar(cp)) out += ch;
    else if (cp < 0x10000) out += 'u+' + cp.toString(16).padStart(4, '0');
    else out += 'U+' + cp.toString(16).padStart(8, '0');
  }
  return out;
}

export type ChannelPart = string | readonly string[];

/**
 * Joins parts exactly like Go's `appendChannelParts`: a separator is written before a part only if
 * the previous part produced bytes; topic lists are flattened recursively.
 */
export function formatChannel(...parts: ChannelPart[]): string {
  let buf = '';
  let prefix = false;
  for (const part of parts) {
    if (prefix) buf += CHANNEL_SEPARATOR;
    const before = buf.length;
    buf += typeof part === 'string' ? sanitizeChannelPart(part) : formatChannel(...part);
    prefix = buf.length > before;
  }
  return buf;
}

/** A topic: nothing, one string, or a list of strings (flattened). */
export type Topic = string | readonly string[] | undefined;

function topicParts(topic: Topic): readonly string[] {
  if (topic === undefined) return [];
  return typeof topic === 'string' ? [topic] : topic;
}

/** `Service|Method|topic…|REQ`: requests to servers. */
export function requestChannel(service: string, method: string, topic?: Topic): string {
  return formatChannel(service, method, topicParts(topic), 'REQ');
}

/** `Service|Method|topic…|RCLAIM`: claim responses to servers. */
export function claimResponseChannel(service: string, method: string, topic?: Topic): string {
  return formatChannel(service, method, topicParts(topic), 'RCLAIM');
}

/** `Service|Method|topic…|STR`: stream messages to servers (unused by egress). */
export function streamServerChannel(service: string, method: string, topic?: Topic): string {
  return formatChannel(service, method, topicParts(topic), 'STR');
}

/** `Service|clientID|CLAIM`: claim requests to one client. */
export function claimRequestChannel(service: string, clientId: string): string {
  return formatChannel(service, clientId, 'CLAIM');
}

/** `Service|clientID|RES`: responses to one client. */
export function responseChannel(service: string, clientId: string): string {
  return formatChannel(service, clientId, 'RES');
}

/** The suffix (last `|` part) of a channel name. */
export function channelSuffix(channel: string): string {
  return channel.slice(channel.lastIndexOf(CHANNEL_SEPARATOR) + 1);
}
