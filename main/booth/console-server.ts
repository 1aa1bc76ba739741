import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, join } from 'node:path';
import { toEgressError } from '../contracts/errors.js';
import { boothOperations, describeZodError, type BoothEvent, type BoothOperation } from '../contracts/ipc.js';
import { logger } from '../log.js';
import type { BoothService } from './booth-service.js';
import { tokenMatches } from './console-token.js';

/**
 * `egress console`: the booth UI over HTTP for a headless appliance, on node:http.
 *   GET  /                          the UI (renderer/, built into dist/renderer)
 *   POST /api/<operation>           one per booth operation, JSON body checked with its zod schema
 *   GET  /api/events                live events (server-sent events: state, recordings, preview)
 *   GET  /api/recordings/<id>/file  a past recording's file (play / download; Range supported)
 * Every request needs the token: `Authorization: Bearer <token>`, or the HttpOnly SameSite=Strict
 * cookie the page gets when opened once as `/?token=<token>` (the token then leaves the address bar).
 * Requests from another origin are refused (Origin / Sec-Fetch-Site / Host checks), before the token
 * is even looked at; a loopback bind also insists on a loopback Host (no DNS rebinding).
 */

const log = logger('console');

export const COOKIE_NAME = 'egress_console';
const MAX_BODY_BYTES = 64 * 1024;
/** An oversized body is read to its end (up to this) so that its sender sees the 413. */
const MAX_DRAIN_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.mp4': 'video/mp4',
  '.ogg': 'audio/ogg',
  '.mp3': 'audio/mpeg',
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export interface ConsoleServerOptions {
  readonly service: BoothService;
  readonly token: string;
  /** dist/renderer: index.html and the UI's scripts. */
  readonly uiDir: string;
  readonly port: number;
  readonly bind: string;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(bind: string): boolean {
  return LOOPBACK_HOSTS.has(bind) || bind.startsWith('127.');
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ConsoleServer {
  readonly #opts: ConsoleServerOptions;
  #server: Server | null = null;
  #port = 0;
  readonly #streams = new Set<ServerResponse>();

  constructor(opts: ConsoleServerOptions) {
    this.#opts = opts;
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(res, err));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.bind, () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    const onEvent = (e: BoothEvent): void => {
      for (const res of this.#streams) res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    this.#opts.service.on('event', onEvent);
    server.once('close', () => this.#opts.service.off('event', onEvent));
    return this.#port;
  }

  async close(): Promise<void> {
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    const s = this.#server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    this.#checkOrigin(req);
    const queryToken = url.pathname === '/' && req.method === 'GET' ? url.searchParams.get('token') : null;
    if (queryToken !== null) {
      // The page opened with the printed URL: swap the token for a cookie and drop it from the address.
      if (!tokenMatches(queryToken, this.#opts.token)) throw new HttpError(401, 'wrong token: open the URL egress console printed');
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': `${COOKIE_NAME}=${this.#opts.token}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    if (!this.#authorized(req)) throw new HttpError(401, 'missing or wrong token: open the URL egress console printed, or send Authorization: Bearer <token>');

    if (req.method === 'GET' && url.pathname === '/') return this.#serveUi(res, 'index.html');
    if (req.method === 'GET' && /^\/[a-z][a-z0-9-]*\.(js|css)$/.test(url.pathname)) return this.#serveUi(res, url.pathname.slice(1));
    if (req.method === 'GET' && url.pathname === '/api/events') return this.#events(req, res);
    const file = /^\/api\/recordings\/(EG_[0-9A-Za-z]{12})\/file$/.exec(url.pathname);
    if (req.method === 'GET' && file?.[1]) return this.#serveRecording(req, res, file[1]);
    const op = /^\/api\/([a-zA-Z]+)$/.exec(url.pathname)?.[1];
    if (op && Object.hasOwn(boothOperations, op)) {
      if (req.method !== 'POST') throw new HttpError(405, `${url.pathname} takes POST`);
      return this.#operation(req, res, op as BoothOperation);
    }
    throw new HttpError(404, `not found: ${url.pathname}`);
  }

  /**
   * Same-origin only: a browser names the page's origin (Origin) or the kind of request
   * (Sec-Fetch-Site) on cross-site requests; either saying "another site" is refused. With a loopback
   * bind the Host must be loopback too, so a rebound DNS name cannot reach the console.
   */
  #checkOrigin(req: IncomingMessage): void {
    const host = req.headers.host ?? '';
    if (isLoopback(this.#opts.bind)) {
      const name = host.replace(/:\d+$/, '');
      if (!LOOPBACK_HOSTS.has(name)) throw new HttpError(403, 'cross-origin request refused (Host is not this console)');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) throw new HttpError(403, 'cross-origin request refused');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, 'cross-origin request refused');
  }

  #authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    if (auth !== undefined) return tokenMatches(/^Bearer (.+)$/.exec(auth)?.[1], this.#opts.token);
    const cookie = (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${COOKIE_NAME}=`));
    return tokenMatches(cookie?.slice(COOKIE_NAME.length + 1), this.#opts.token);
  }

  async #serveUi(res: ServerResponse, name: string): Promise<void> {
    let body: Buffer;
    try {
      body = await readFile(join(this.#opts.uiDir, basename(name)));
    } catch {
      throw new HttpError(404, `not found: /${name}`);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream' });
    res.end(body);
  }

  async #operation(req: IncomingMessage, res: ServerResponse, op: BoothOperation): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    const raw = await readBody(req);
    // JSON only: a cross-site form cannot send it without a CORS preflight we never answer.
    // Media types are case-insensitive (RFC 9110 §8.3.1).
    if (raw.length > 0 && !/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, 'the body must be application/json');
    let json: unknown = {};
    if (raw.length > 0) {
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new HttpError(400, 'the body is not valid JSON');
      }
    }
    const parsed = boothOperations[op].safeParse(json);
    if (!parsed.success) throw new HttpError(400, describeZodError(parsed.error));
    const result = await this.#opts.service.invoke(op, parsed.data);
    sendJson(res, 200, result);
  }

  async #events(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    const s = this.#opts.service;
    res.write(`event: state\ndata: ${JSON.stringify({ type: 'state', state: s.state() })}\n\n`);
    res.write(`event: recordings\ndata: ${JSON.stringify({ type: 'recordings', recordings: await s.listRecordings() })}\n\n`);
    this.#streams.add(res);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    req.on('close', () => {
      clearInterval(heartbeat);
      this.#streams.delete(res);
    });
  }

  async #serveRecording(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const path = await this.#opts.service.localFile(id);
    const { size } = await stat(path);
    const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
    const headers = { ...SECURITY_HEADERS, 'content-type': type, 'accept-ranges': 'bytes', 'content-disposition': `inline; filename="${basename(path).replace(/[^\w.-]/g, '_')}"` };
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (range[1] || range[2])) {
      const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
      const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { ...SECURITY_HEADERS, 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      createReadStream(path, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': size });
    createReadStream(path).pipe(res);
  }

  #fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message });
      return;
    }
    const e = toEgressError(err);
    if (e.httpStatus >= 500 || e.httpStatus === 0) log.error(`console request failed: ${e.message}`);
    sendJson(res, e.httpStatus >= 400 ? e.httpStatus : 500, { error: e.message, code: e.code });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        // Read (and drop) the rest before answering, so the client, still sending, gets the 413
        // rather than a reset connection; a body beyond any reason is cut off instead.
        if (size > MAX_DRAIN_BYTES) {
          req.destroy();
          break;
        }
        continue;
      }
      chunks.push(chunk as Buffer);
    }
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    // The client went away mid-body (`aborted`): its request, not a fault of the console.
    throw new HttpError(400, `the request body was cut off: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks);
}
