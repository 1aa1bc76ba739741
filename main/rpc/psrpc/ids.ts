import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `prefix` + 12 characters from `[a-zA-Z0-9]` (psrpc `pkg/rand/id.go` format). */
export function newId(prefix: string): string {
  let s = prefix;
  for (let i = 0; i < 12; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export const newClientId = (): string => newId('CLI_');
export const newServerId = (): string => newId('SRV_');
export const newRequestId = (): string => newId('REQ_');

/** True for IDs that are safe inside channel names (no sanitization needed). */
export function isChannelSafeId(id: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(id);
}
