import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The console's access token: 32 random bytes (base64url), made at the first start and kept in
 * `<config dir>/console-token` (mode 0600) so the printed URL keeps working across restarts. Delete
 * the file to get a new one.
 */

export const TOKEN_FILE = 'console-token';

export async function loadOrCreateToken(configDir: string): Promise<{ token: string; created: boolean; path: string }> {
  const path = join(configDir, TOKEN_FILE);
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length >= 32) return { token, created: false, path };
  } catch {
    // First start: made below.
  }
  const token = randomBytes(32).toString('base64url');
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await writeFile(path, token + '\n', { mode: 0o600 });
  return { token, created: true, path };
}

/** Constant-time check of a presented token (hashed first, so lengths never differ). */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined || presented === '') return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
