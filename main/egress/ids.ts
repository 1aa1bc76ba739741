import { randomBytes } from 'node:crypto';

/** New egress ids look like the original's (`EG_` + 12 random base62 chars). */
export function newEgressId(): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const bytes = randomBytes(12);
  let id = 'EG_';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}
