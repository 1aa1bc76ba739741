/**
 * Storage emulators for the upload tests, all on 127.0.0.1 free ports, data in temp dirs:
 * - s3rver (npm devDependency), in a child process, with an extra key pair so tests can use their own secrets;
 * - azurite (blob only, npm devDependency), child process, data in a temp dir;
 * - fake-gcs-server (Go, pinned, installed into .cache/bin by scripts/install-storage-emulators.sh);
 * - an Ali OSS loopback server (here) that verifies OSS V1 signatures and stores objects, multipart too;
 * - a fault proxy (TCP) in front of any of them: pass, 403, down, die after N bytes, slow.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs: number, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`emulator exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}

export async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(t);
}

export interface Emulator {
  readonly port: number;
  readonly endpoint: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

// ------------------------------------------------------------------------------------------------
// s3rver

export interface S3Emulator extends Emulator {
  readonly accessKey: string;
  readonly secret: string;
  readonly bucket: string;
}

export async function startS3(opts: { accessKey?: string; secret?: string; bucket?: string } = {}): Promise<S3Emulator> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const accessKey = opts.accessKey ?? 'S3RVER';
  const secret = opts.secret ?? 'S3RVER';
  const bucket = opts.bucket ?? 'test-bucket';
  const script = `
    const S3rver = require('s3rver');
    const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
    const [ak, sk, dir, port, bucket] = process.argv.slice(1);
    DUMMY_ACCOUNT.createKeyPair(ak, sk);
    new S3rver({ directory: dir, port: Number(port), address: '127.0.0.1', silent: true, configureBuckets: [{ name: bucket }] })
      .run().then(() => console.log('ready'), (e) => { console.error(e); process.exit(1); });`;
  const proc = spawn(process.execPath, ['-e', script, accessKey, secret, dataDir, String(port), bucket], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, 15_000, proc);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    dataDir,
    accessKey,
    secret,
    bucket,
    async stop() {
      await stopProc(proc);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------------------------
// azurite

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's well-known development key (public, documented). */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzureEmulator extends Emulator {
  readonly account: string;
  readonly key: string;
  /** Service URL to pass as UploaderOptions.azureServiceUrl. */
  readonly serviceUrl: string;
}

export async function startAzurite(): Promise<AzureEmulator> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'azurite-'));
  const proc = spawn(
    path.join(BIN, 'azurite-blob'),
    ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dataDir, '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose', '--disableProductStyleUrl'],
    { cwd: dataDir, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(port, 20_000, proc);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    serviceUrl: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`,
    dataDir,
    account: AZURITE_ACCOUNT,
    key: AZURITE_KEY,
    async stop() {
      await stopProc(proc);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------------------------
// fake-gcs-server

export const FAKE_GCS_BIN = path.join(ROOT, '.cache', 'bin', 'fake-gcs-server');

export function ensureFakeGcs(): void {
  if (existsSync(FAKE_GCS_BIN)) return;
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'install-storage-emulators.sh')], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(FAKE_GCS_BIN)) throw new Error('fake-gcs-server is not installed (scripts/install-storage-emulators.sh failed)');
}

export interface GcsEmulator extends Emulator {
  readonly bucket: string;
  createBucket(name: string): Promise<void>;
}

export async function startFakeGcs(opts: { bucket?: string } = {}): Promise<GcsEmulator> {
  ensureFakeGcs();
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fakegcs-'));
  const bucket = opts.bucket ?? 'test-bucket';
  await mkdir(path.join(dataDir, 'root'), { recursive: true });
  const proc = spawn(
    FAKE_GCS_BIN,
    [
      '-scheme', 'http', '-host', '127.0.0.1', '-port', String(port),
      '-backend', 'filesystem', '-filesystem-root', path.join(dataDir, 'root'),
      '-public-host', `127.0.0.1:${port}`, '-external-url', `http://127.0.0.1:${port}`, '-log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  await waitForPort(port, 20_000, proc);
  const endpoint = `http://127.0.0.1:${port}`;
  const createBucket = async (name: string): Promise<void> => {
    const res = await fetch(`${endpoint}/storage/v1/b?project=test`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    if (!res.ok && res.status !== 409) throw new Error(`fake-gcs create bucket: ${res.status} ${await res.text()}`);
  };
  await createBucket(bucket);
  return {
    port,
    endpoint,
    dataDir,
    bucket,
    createBucket,
    async stop() {
      await stopProc(proc);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Ali OSS loopback server (OSS V1 signatures)

export interface AliOssEmulator extends Emulator {
  readonly accessKey: string;
  readonly secret: string;
  readonly bucket: string;
  /** Local path of a stored object (for byte-for-byte checks). */
  objectPath(key: string): string;
  /** Requests rejected for a bad signature. */
  readonly badSignatures: number;
  /** Multipart uploads completed. */
  readonly multipartCompleted: number;
}

const OSS_SUBRESOURCES = new Set([
  'acl', 'uploads', 'location', 'cors', 'logging', 'website', 'referer', 'lifecycle', 'delete', 'append', 'tagging',
  'objectMeta', 'uploadId', 'partNumber', 'security-token', 'position', 'img', 'style', 'styleName', 'replication',
  'replicationProgress', 'replicationLocation', 'cname', 'bucketInfo', 'comp', 'qos', 'live', 'status', 'vod',
  'startTime', 'endTime', 'symlink', 'x-oss-process', 'response-content-type', 'response-content-language',
  'response-expires', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'udf', 'udfName', 'udfImage', 'udfId', 'udfImageDesc', 'udfApplication', 'udfApplicationLog', 'restore', 'callback',
  'callback-var', 'policy', 'stat', 'encryption', 'versions', 'versioning', 'versionId', 'sequential', 'continuation-token',
]);

function ossCanonical(method: string, headers: http.IncomingHttpHeaders, resource: string, query: URLSearchParams, dateOrExpires: string): string {
  const h = (k: string): string => {
    const v = headers[k];
    return Array.isArray(v) ? v.join(',') : (v ?? '');
  };
  const ossHeaders = Object.keys(headers)
    .filter((k) => k.startsWith('x-oss-'))
    .sort()
    .map((k) => `${k}:${h(k).trim()}`);
  const sub = [...query.keys()].filter((k) => OSS_SUBRESOURCES.has(k)).sort();
  let res = resource;
  if (sub.length) res += '?' + sub.map((k) => (query.get(k) ? `${k}=${query.get(k)}` : k)).join('&');
  return [method, h('content-md5'), h('content-type'), dateOrExpires, ...ossHeaders, res].join('\n');
}

function xmlError(res: http.ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'x-oss-request-id': randomUUID() });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>x</RequestId><HostId>127.0.0.1</HostId></Error>`);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startAliOss(opts: { accessKey?: string; secret?: string; bucket?: string } = {}): Promise<AliOssEmulator> {
  const accessKey = opts.accessKey ?? 'ali-test-key';
  const secret = opts.secret ?? 'ali-test-secret';
  const bucket = opts.bucket ?? 'test-bucket';
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'alioss-'));
  const objects = path.join(dataDir, 'objects');
  const parts = path.join(dataDir, 'parts');
  await mkdir(objects, { recursive: true });
  await mkdir(parts, { recursive: true });
  const objectPath = (key: string): string => path.join(objects, encodeURIComponent(key));
  const uploads = new Map<string, string>(); // uploadId → key
  let badSignatures = 0;
  let multipartCompleted = 0;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const segs = url.pathname.split('/');
    const b = decodeURIComponent(segs[1] ?? '');
    const key = decodeURIComponent(segs.slice(2).join('/'));
    const resource = `/${b}/${key}`;
    // --- authentication
    const auth = req.headers['authorization'];
    let expected: string;
    let given: string;
    if (typeof auth === 'string' && auth.startsWith('OSS ')) {
      const [ak, sig] = auth.slice(4).split(':');
      if (ak !== accessKey) {
        badSignatures++;
        return xmlError(res, 403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.');
      }
      const date = (req.headers['x-oss-date'] as string | undefined) ?? req.headers['date'] ?? '';
      expected = createHmac('sha1', secret).update(ossCanonical(method, req.headers, resource, url.searchParams, date)).digest('base64');
      given = sig ?? '';
    } else if (url.searchParams.has('Signature')) {
      if (url.searchParams.get('OSSAccessKeyId') !== accessKey) {
        badSignatures++;
        return xmlError(res, 403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.');
      }
      const expires = url.searchParams.get('Expires') ?? '';
      if (Number(expires) * 1000 < Date.now()) return xmlError(res, 403, 'AccessDenied', 'Request has expired.');
      expected = createHmac('sha1', secret).update(ossCanonical(method, req.headers, resource, url.searchParams, expires)).digest('base64');
      given = url.searchParams.get('Signature') ?? '';
    } else {
      return xmlError(res, 403, 'AccessDenied', 'You have no right to access this object because of bucket acl.');
    }
    if (expected !== given) {
      badSignatures++;
      return xmlError(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    if (b !== bucket) return xmlError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist.');
    const reqId = randomUUID();
    // --- operations
    if (method === 'POST' && url.searchParams.has('uploads')) {
      await readBody(req);
      const id = randomUUID().replace(/-/g, '');
      uploads.set(id, key);
      await mkdir(path.join(parts, id), { recursive: true });
      res.writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': reqId });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${b}</Bucket><Key>${key}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
      return;
    }
    const uploadId = url.searchParams.get('uploadId');
    if (method === 'PUT' && uploadId && url.searchParams.has('partNumber')) {
      if (!uploads.has(uploadId)) return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      const n = Number(url.searchParams.get('partNumber'));
      const tmp = path.join(parts, uploadId, `${n}.tmp`);
      await pipeline(req, createWriteStream(tmp));
      const { rename } = await import('node:fs/promises');
      await rename(tmp, path.join(parts, uploadId, String(n)));
      res.writeHead(200, { etag: `"${uploadId}-${n}"`, 'x-oss-request-id': reqId });
      res.end();
      return;
    }
    if (method === 'POST' && uploadId) {
      const body = await readBody(req);
      const k = uploads.get(uploadId);
      if (k === undefined) return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      const nums = [...body.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
      const out = createWriteStream(objectPath(k) + '.tmp');
      for (const n of nums) {
        const p = path.join(parts, uploadId, String(n));
        if (!existsSync(p)) {
          out.destroy();
          return xmlError(res, 400, 'InvalidPart', `part ${n} missing`);
        }
        await pipeline(createReadStream(p), out, { end: false });
      }
      await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
      const { rename } = await import('node:fs/promises');
      await rename(objectPath(k) + '.tmp', objectPath(k));
      await rm(path.join(parts, uploadId), { recursive: true, force: true });
      uploads.delete(uploadId);
      multipartCompleted++;
      res.writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': reqId, etag: `"${uploadId}"` });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Location>http://127.0.0.1/${b}/${k}</Location><Bucket>${b}</Bucket><Key>${k}</Key><ETag>"${uploadId}"</ETag></CompleteMultipartUploadResult>`);
      return;
    }
    if (method === 'DELETE' && uploadId) {
      await rm(path.join(parts, uploadId), { recursive: true, force: true });
      uploads.delete(uploadId);
      res.writeHead(204, { 'x-oss-request-id': reqId });
      res.end();
      return;
    }
    if (method === 'PUT') {
      const tmp = objectPath(key) + `.${reqId}.tmp`;
      await pipeline(req, createWriteStream(tmp));
      const { rename } = await import('node:fs/promises');
      await rename(tmp, objectPath(key));
      res.writeHead(200, { etag: `"${reqId}"`, 'x-oss-request-id': reqId });
      res.end();
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      const p = objectPath(key);
      if (!existsSync(p)) return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      const st = await stat(p);
      res.writeHead(200, { 'content-length': String(st.size), 'x-oss-request-id': reqId });
      if (method === 'HEAD') return void res.end();
      await pipeline(createReadStream(p), res);
      return;
    }
    if (method === 'DELETE') {
      await unlink(objectPath(key)).catch(() => undefined);
      res.writeHead(204);
      res.end();
      return;
    }
    xmlError(res, 405, 'MethodNotAllowed', 'method not allowed');
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) xmlError(res, 500, 'InternalError', (err as Error).message);
      else res.destroy();
    });
  });
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5000;
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    dataDir,
    accessKey,
    secret,
    bucket,
    objectPath,
    get badSignatures() {
      return badSignatures;
    },
    get multipartCompleted() {
      return multipartCompleted;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Fault proxy

export type FaultMode =
  | { readonly kind: 'pass' }
  /** Answers every request with HTTP 403 (S3-style XML body) and closes. */
  | { readonly kind: 'forbidden' }
  /** Not listening: connections are refused. */
  | { readonly kind: 'down' }
  /** Forwards until `bytes` request bytes went upstream, then kills every connection and goes down. */
  | { readonly kind: 'die-after'; readonly bytes: number }
  /** Forwards request bytes at most `bytesPerSec` (a slow store). */
  | { readonly kind: 'slow'; readonly bytesPerSec: number };

export interface FaultProxy {
  readonly port: number;
  readonly endpoint: string;
  setMode(mode: FaultMode): Promise<void>;
  readonly mode: FaultMode;
  /** Request bytes forwarded since the last setMode. */
  readonly forwarded: number;
  /** Resolves when a die-after mode fired. */
  died(): Promise<void>;
  stop(): Promise<void>;
}

const FORBIDDEN_BODY =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>fault-proxy</RequestId></Error>';

export async function startFaultProxy(targetPort: number, initial: FaultMode = { kind: 'pass' }): Promise<FaultProxy> {
  const port = await freePort();
  let mode: FaultMode = initial;
  let forwarded = 0;
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  let diedResolve: (() => void) | null = null;
  let diedPromise = new Promise<void>((r) => (diedResolve = r));

  const killAll = (): void => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };

  const onConnection = (client: net.Socket): void => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (mode.kind === 'forbidden') {
      client.once('data', () => {
        client.end(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(FORBIDDEN_BODY)}\r\nConnection: close\r\n\r\n${FORBIDDEN_BODY}`,
        );
      });
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      const m = mode;
      if (m.kind === 'die-after' && forwarded + chunk.length >= m.bytes) {
        forwarded += chunk.length;
        void goDown().then(() => diedResolve?.());
        return;
      }
      forwarded += chunk.length;
      if (m.kind === 'slow') {
        client.pause();
        upstream.write(chunk);
        setTimeout(() => client.resume(), Math.ceil((chunk.length / m.bytesPerSec) * 1000));
        return;
      }
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    client.on('end', () => upstream.end());
  };

  const listen = async (): Promise<void> => {
    if (server) return;
    const s = net.createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  };
  const goDown = async (): Promise<void> => {
    const s = server;
    server = null;
    mode = { kind: 'down' };
    killAll();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };

  const setMode = async (m: FaultMode): Promise<void> => {
    forwarded = 0;
    if (m.kind === 'down') {
      await goDown();
      return;
    }
    killAll();
    mode = m;
    if (m.kind === 'die-after') diedPromise = new Promise<void>((r) => (diedResolve = r));
    await listen();
  };
  await setMode(initial);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    setMode,
    get mode() {
      return mode;
    },
    get forwarded() {
      return forwarded;
    },
    died: () => diedPromise,
    async stop() {
      await goDown();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// helpers

/** Writes a file of `size` pseudo-random bytes (deterministic per seed) without holding it in memory. */
export async function makeTestFile(dir: string, name: string, size: number, seed = 1): Promise<string> {
  const p = path.join(dir, name);
  const out = createWriteStream(p);
  const block = Buffer.alloc(1024 * 1024);
  let x = seed >>> 0 || 1;
  let written = 0;
  while (written < size) {
    for (let i = 0; i < block.length; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      block.writeUInt32LE(x >>> 0, i);
    }
    const n = Math.min(block.length, size - written);
    const chunk = Buffer.from(block.subarray(0, n));
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    written += n;
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  return p;
}

export async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFilesRecursive(p)));
    else out.push(p);
  }
  return out;
}
