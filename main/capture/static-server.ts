import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

/**
 * Serves a directory of bundled pages on 127.0.0.1 (templates, the demo page). Pages are loaded over
 * http, never file://: tab capture needs a secure context and file:// URLs are refused for egress.
 */

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export class StaticServer {
  #server: Server | null = null;

  constructor(private readonly root: string) {}

  /** Starts listening; resolves with the base URL (ending in `/`). */
  async listen(port = 0): Promise<string> {
    const root = normalize(this.root + sep);
    const server = createServer((req, res) => {
      void (async () => {
        let path: string;
        try {
          path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
        } catch {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
          return;
        }
        let file = normalize(join(root, path));
        if (!file.startsWith(root)) {
          res.writeHead(403).end();
          return;
        }
        try {
          if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
          await stat(file);
        } catch {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
          return;
        }
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
        createReadStream(file).pipe(res);
      })();
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
