/**
 * Hostile input to `egress console` (a real process): random and malformed bodies, wrong JSON types
 * in every field of every operation, bad JSON, wrong content types, huge bodies, every method on every
 * path, odd paths and headers, and raw bytes that are not HTTP at all. The server never crashes and
 * never answers 5xx: every request is refused with a 4xx that says why (a JSON `error`, or node's
 * own status line for what is not HTTP), and it keeps serving afterwards. Deterministic (seeded):
 * a failure names the request, which replays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { boothOperations, type BoothOperation } from '../../main/contracts/ipc.js';
import { tempDir } from '../support/web-egress.js';
import { startConsole, type ConsoleProcess } from './console.js';

let tmp: { path: string; remove: () => Promise<void> };
let con: ConsoleProcess;

before(async () => {
  tmp = await tempDir('egress-console-fuzz-');
  con = await startConsole(join(tmp.path, 'config'), join(tmp.path, 'recordings'));
});
after(async () => {
  const code = await con.stop();
  assert.equal(code, 0, `egress console exit code ${code}:\n${con.output().slice(-2000)}`);
  await tmp.remove();
});

/** Deterministic pseudo-random numbers (a failure can be replayed). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

/** One HTTP request with node:http (any method, header or Host); a reset connection is an answer of 0. */
function send(method: string, path: string, headers: OutgoingHttpHeaders, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve) => {
    // node:http sends no Content-Length of its own for a DELETE/OPTIONS body: say it.
    const length = body === undefined ? {} : { 'content-length': Buffer.byteLength(body) };
    const req = httpRequest({ host: '127.0.0.1', port: con.port, method, path, headers: { host: `127.0.0.1:${con.port}`, ...length, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: String(res.headers['content-type'] ?? '') }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: '', contentType: '' }));
    });
    req.on('error', () => resolve({ status: 0, body: '', contentType: '' }));
    req.end(body);
  });
}

const auth = (): OutgoingHttpHeaders => ({ authorization: `Bearer ${con.token}` });
const json = (): OutgoingHttpHeaders => ({ ...auth(), 'content-type': 'application/json' });

/** Refusals the console may give to bad input (each with a reason). */
const REFUSALS = new Set([400, 401, 403, 404, 405, 413, 415]);

function assertRefused(a: Answer, what: string, allowed: ReadonlySet<number> = REFUSALS): void {
  assert.ok(allowed.has(a.status), `${what}: answered ${a.status} ${a.body.slice(0, 300)}`);
  if (a.contentType.startsWith('application/json')) {
    const error = (JSON.parse(a.body) as { error?: unknown }).error;
    assert.ok(typeof error === 'string' && error.length > 3, `${what}: ${a.status} without a reason: ${a.body.slice(0, 300)}`);
  } else {
    assert.equal(a.status, 405, `${what}: a ${a.status} refusal must say why in JSON (got ${a.contentType || 'no body'})`);
  }
}

const WRONG: unknown[] = [null, true, false, 0, -1, 1.5, -1e308, 1e308, '', 'x', 'x'.repeat(10_000), '\u0000\uffff\ud800', [], [1, 'a'], {}, { a: 1 }, { __proto__: { polluted: true } }, '../../etc/passwd', 'EG_', 'ws://', 'rtmp://'];

/** A random JSON value (bounded depth). */
function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 8));
  switch (k) {
    case 0:
      return WRONG[Math.floor(r() * WRONG.length)];
    case 1:
      return Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1);
    case 2:
      return String.fromCharCode(...Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 0xffff)));
    case 3:
      return r() < 0.5;
    case 4:
      return null;
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['source', 'kind', 'url', 'preset', 'outputs', 'durationS', 'id', 'layout', 'roomName', 'serverUrl', 'folder', 'fileType', 'constructor', '__proto__', 'prototype', 'toString', 'x'];
      for (let i = Math.floor(r() * 4); i > 0; i--) o[keys[Math.floor(r() * keys.length)] as string] = randomValue(r, depth + 1);
      return o;
    }
  }
}

/** Every field of an operation's known-good body replaced, one at a time, by each wrong value. */
function wrongTypeBodies(op: BoothOperation): unknown[] {
  const good: Record<BoothOperation, Record<string, unknown>> = {
    getState: {},
    start: { source: { kind: 'web', url: '' }, preset: 'H264_720P_30', audioOnly: false, videoOnly: false, outputs: { destination: 'local', folder: '', fileType: 'mp4', rtmpUrl: '', hlsDir: '' }, durationS: 0 },
    pause: {},
    resume: {},
    stop: {},
    listRecordings: {},
    deleteRecording: { id: 'EG_000000000000' },
    revealRecording: { id: 'EG_000000000000' },
    getSettings: {},
    saveSettings: { sourceKind: 'web', url: '', preset: 'H264_720P_30', destination: 'local', fileType: 'mp4' },
  };
  const base = good[op];
  const out: unknown[] = [...WRONG, { unexpected: 1 }];
  const paths: string[][] = [];
  const walk = (o: Record<string, unknown>, p: string[]): void => {
    for (const [k, v] of Object.entries(o)) {
      paths.push([...p, k]);
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, [...p, k]);
    }
  };
  walk(base, []);
  for (const path of paths) {
    for (const w of WRONG) {
      const body = structuredClone(base);
      let at: Record<string, unknown> = body;
      for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
      at[path[path.length - 1] as string] = w;
      out.push(body);
    }
  }
  return out;
}

const OPS = Object.keys(boothOperations) as BoothOperation[];

/** True when the body would be a valid request (those are not fuzz: a valid start records). */
function valid(op: BoothOperation, body: unknown): boolean {
  // As the console sees it: what the JSON text says (an empty body is `{}`).
  const text = JSON.stringify(body);
  return boothOperations[op].safeParse(text === undefined || text === '' ? {} : JSON.parse(text)).success;
}

describe('egress console under hostile input', () => {
  it('wrong types in every field of every operation → 400 naming what is wrong', async () => {
    let sent = 0;
    for (const op of OPS) {
      for (const body of wrongTypeBodies(op)) {
        if (valid(op, body)) continue;
        const a = await send('POST', `/api/${op}`, json(), JSON.stringify(body));
        assertRefused(a, `${op} ${JSON.stringify(body).slice(0, 200)}`);
        assert.equal(a.status, 400, `${op} ${JSON.stringify(body).slice(0, 200)}`);
        sent++;
      }
    }
    console.log(`# ${sent} wrong-type bodies refused`);
  });

  it('random JSON, bad JSON, random bytes, wrong content types, huge and deeply nested bodies → 400 / 413 / 415', async () => {
    const r = rng(7);
    let sent = 0;
    const contentTypes = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/jsonx', 'application/json\u0000'];
    for (let i = 0; i < 400; i++) {
      const op = OPS[Math.floor(r() * OPS.length)] as BoothOperation;
      const kind = Math.floor(r() * 4);
      let body: Buffer;
      if (kind === 0) {
        const v = randomValue(r);
        if (valid(op, v)) continue;
        body = Buffer.from(JSON.stringify(v) ?? 'undefined');
      } else if (kind === 1) {
        const good = JSON.stringify(randomValue(r)) ?? '{}';
        // Cut or corrupted JSON.
        body = Buffer.from(good.slice(0, Math.floor(r() * good.length)) + ['', '{', '"', ',', '\\', ']', '\u0000'][Math.floor(r() * 7)]);
        if (body.length === 0 && valid(op, {})) continue;
        try {
          if (valid(op, JSON.parse(body.toString('utf8')))) continue;
        } catch {
          /* not JSON: what is wanted */
        }
      } else if (kind === 2) {
        body = Buffer.from(Array.from({ length: Math.floor(r() * 2000) + 1 }, () => Math.floor(r() * 256)));
      } else {
        body = Buffer.from('['.repeat(20_000 + Math.floor(r() * 40_000)));
      }
      const ct = contentTypes[Math.floor(r() * contentTypes.length)] as string;
      const headers: OutgoingHttpHeaders = { ...auth(), ...(ct ? { 'content-type': ct.replace(/\u0000/g, '') } : {}) };
      const a = await send('POST', `/api/${op}`, headers, body);
      assertRefused(a, `#${i} ${op} ${ct} ${body.subarray(0, 80).toString('hex')}`);
      sent++;
    }
    // Media types are case-insensitive: an upper-case JSON type is read as JSON (its error says so).
    const upper = await send('POST', '/api/start', { ...auth(), 'content-type': 'Application/JSON; Charset=UTF-8' }, '{"preset": 5}');
    assert.equal(upper.status, 400);
    assert.match(upper.body, /preset: /);
    // Bodies over the limit.
    for (const size of [64 * 1024 + 1, 1024 * 1024, 4 * 1024 * 1024]) {
      const a = await send('POST', '/api/start', json(), Buffer.alloc(size, 0x20));
      assertRefused(a, `${size} bytes`, new Set([413]));
    }
    // Beyond what it reads to answer, the console cuts the connection (a sender of 64 MB gets no
    // answer, and the console no load).
    const huge = await send('POST', '/api/start', json(), Buffer.alloc(64 * 1024 * 1024, 0x20));
    assert.ok(huge.status === 0 || huge.status === 413, `64 MB: ${huge.status}`);
    console.log(`# ${sent} random bodies refused`);
  });

  it('every method on every path, odd paths and headers → 401 / 403 / 404 / 405', async () => {
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND'];
    const paths = [
      ...OPS.map((op) => `/api/${op}`),
      '/api/',
      '/api',
      '/api/__proto__',
      '/api/constructor',
      '/api/hasOwnProperty',
      '/api/toString',
      '/api/GETSTATE',
      '/api/start/',
      '/api/start?x=1',
      '/api/recordings/EG_000000000000/file',
      '/api/recordings/EG_000000000000/file/',
      '/api/recordings/../../../../etc/passwd/file',
      '/api/recordings/EG_%2e%2e%2fetc%2fpas/file',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2fetc%2fpasswd.js',
      '//etc/passwd',
      '/index.html',
      '/x.js',
      '/' + 'a'.repeat(4000),
      '/%',
      '/%zz',
      '/\u00e9',
      '*',
    ];
    let sent = 0;
    for (const m of methods) {
      for (const p of paths) {
        for (const h of [auth(), {}, { ...auth(), origin: 'http://evil.example' }, { ...auth(), 'sec-fetch-site': 'cross-site' }, { ...auth(), host: 'evil.example' }]) {
          const a = await send(m, encodeURI(p).replace(/%25/g, '%'), h, m === 'GET' || m === 'HEAD' ? undefined : '{}');
          const what = `${m} ${p.slice(0, 80)} ${JSON.stringify(h).replace(con.token, '<token>')}`;
          sent++;
          // What exists and is allowed answers 200: the UI, a read-only operation, the event stream.
          if (a.status === 200) {
            assert.ok(h.authorization && !h.origin && !h['sec-fetch-site'] && !h.host, `${what}: 200 without the right headers`);
            continue;
          }
          if (m === 'HEAD') {
            assert.ok(REFUSALS.has(a.status), `${what}: ${a.status}`);
            continue;
          }
          assertRefused(a, what, new Set([...REFUSALS, 400]));
        }
      }
    }
    console.log(`# ${sent} method/path/header combinations answered`);
  });

  it('bytes that are not HTTP, cut requests and lying lengths: node refuses them, the console keeps serving', async () => {
    const raw = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      `POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n`,
      `POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`,
      `POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${'x'}\r\n\r\nzz\r\n`,
      `POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`,
      '\u0000\u0001\u0002\u0003'.repeat(1000),
    ];
    for (const text of raw) {
      const status = await new Promise<string>((resolve) => {
        const s = connect(con.port, '127.0.0.1', () => s.end(text));
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
        s.on('error', () => resolve(got.split('\r\n')[0] ?? ''));
      });
      // Node's parser answers what is not HTTP (400, 431) or closes; never a 5xx.
      assert.ok(status === '' || /^HTTP\/1\.1 (400|413|431) /.test(status), `${JSON.stringify(text.slice(0, 60))}: ${status}`);
    }
    // A body shorter than its Content-Length, then the client goes away.
    await new Promise<void>((resolve) => {
      const s = connect(con.port, '127.0.0.1', () => {
        s.write(`POST /api/start HTTP/1.1\r\nHost: 127.0.0.1:${con.port}\r\nAuthorization: Bearer ${con.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"sou`);
        setTimeout(() => s.destroy(), 200);
      });
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    // 200 concurrent bad requests.
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => send('POST', `/api/${OPS[i % OPS.length]}`, json(), '{"bad": ')));
    for (const a of many) assertRefused(a, 'concurrent bad JSON');
  });

  it('still serving, nothing started or written, no crash in its output', async () => {
    const state = await con.api<{ busy: boolean }>('getState');
    assert.equal(state.status, 200);
    assert.equal(state.body.busy, false, 'nothing started');
    assert.deepEqual(await readdir(join(tmp.path, 'recordings')).catch(() => []), []);
    assert.equal(con.child.exitCode, null, 'still running');
    assert.doesNotMatch(con.output(), /TypeError|RangeError|ReferenceError|Unhandled|uncaught|console request failed/i);
  });
});
