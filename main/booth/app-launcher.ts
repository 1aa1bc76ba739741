import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `egress app`: starts the Electron booth, or says how to get Electron and points to the console. */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export const ELECTRON_MISSING = `egress app: the Electron binary is not installed.
  Install it with:   npm install electron        (in the egress folder; downloads Electron for this OS)
  or, where Electron cannot run (no display, a server, a build machine), use the same booth in a
  browser:           egress console               (prints a URL with an access token to open)`;

/** The Electron executable's path, or null when the package or its binary download is missing. */
export function electronBinary(): string | null {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

export async function runApp(argv: string[]): Promise<number> {
  const bin = electronBinary();
  if (!bin) {
    process.stderr.write(ELECTRON_MISSING + '\n');
    return 1;
  }
  const child = spawn(bin, [join(ROOT, 'dist/main/electron/app.js'), ...argv], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`egress app: could not start ${bin}: ${err.message}\n${ELECTRON_MISSING}\n`);
      resolve(1);
    });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
