/**
 * The booth's console API against a real `egress console` (real Chromium and GStreamer behind it):
 * access needs the token (401 and nothing started without it), other origins are refused, every
 * body is checked with its operation's schema (400 naming the field), one recording at a time (a
 * second start is refused with 409), and a stop during a pause completes the file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BoothState, RecordingEntry } from '../../main/contracts/ipc.js';
import { StaticServer } from '../../main/capture/static-server.js';
import { ffprobe, videoStream } from '../support/media.js';
import { REPO_ROOT, tempDir } from '../support/web-egress.js';
import { startConsole, waitActive, waitFor, type ConsoleProcess } from './console.js';

const run = promisify(execFile);
let tmp: { path: string; remove: () => Promise<void> };
let con: ConsoleProcess;
const recordingsDir = (): string => join(tmp.path, 'recordings');

before(async () => {
  tmp = await tempDir('egress-booth-api-');
  con = await startConsole(join(tmp.path, 'config'), recordingsDir());
});
after(async () => {
  const code = await con.stop();
  assert.equal(code, 0, `egress console exit code ${code}:\n${con.output().slice(-2000)}`);
  // The token is printed to the terminal once, never logged.
  assert.equal(con.output().split(con.token).length - 1, 1, 'the token appears once in the console output (the printed URL)');
  await tmp.remove();
});

const state = async (): Promise<BoothState> => (await con.api<BoothState>('getState')).body;

describe('egress console API', () => {
  it('keeps the token in the config dir (0600) and prints it at the first start only', async () => {
    const file = join(tmp.path, 'config', 'console-token');
    assert.equal((await readFile(file, 'utf8')).trim(), con.token);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(con.token.length >= 40, 'at least 32 random bytes');
  });

  it('missing or wrong token → 401, and nothing starts', async () => {
    const attempts: [string, Record<string, string>][] = [
      ['missing', { 'content-type': 'application/json' }],
      ['wrong bearer', { 'content-type': 'application/json', authorization: `Bearer ${con.token.slice(0, -1)}x` }],
      ['wrong cookie', { 'content-type': 'application/json', cookie: 'egress_console=nope' }],
      ['not bearer', { 'content-type': 'application/json', authorization: con.token }],
    ];
    for (const [what, headers] of attempts) {
      const res = await fetch(`${con.base}api/start`, { method: 'POST', headers, body: '{}' });
      assert.equal(res.status, 401, what);
      assert.match(((await res.json()) as { error: string }).error, /token/);
    }
    for (const path of ['', 'booth.js', 'api/events']) assert.equal((await fetch(`${con.base}${path}`)).status, 401, `GET /${path}`);
    assert.equal((await fetch(`${con.base}?token=wrong`, { redirect: 'manual' })).status, 401);
    assert.equal((await state()).busy, false, 'nothing started');
    assert.deepEqual(await readdir(recordingsDir()).catch(() => []), []);
  });

  it('the printed URL sets an HttpOnly SameSite=Strict cookie and leaves the address bar', async () => {
    const res = await fetch(`${con.base}?token=${con.token}`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/');
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const page = await fetch(con.base, { headers: { cookie: cookie.split(';')[0] ?? '' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await page.text(), /Recording booth/);
  });

  it('cross-origin requests are refused, with or without the token', async () => {
    const foreign: Record<string, string>[] = [{ origin: 'http://evil.example' }, { origin: `http://127.0.0.1:${con.port + 1}` }, { 'sec-fetch-site': 'cross-site' }];
    for (const h of foreign) {
      const res = await con.api('start', {}, h);
      assert.equal(res.status, 403, JSON.stringify(h));
      assert.match((res.body as { error: string }).error, /cross-origin request refused/);
    }
    // A DNS name rebound to 127.0.0.1 (fetch cannot set Host: plain node:http does).
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: con.port, path: '/api/start', method: 'POST', headers: { host: `evil.example:${con.port}`, authorization: `Bearer ${con.token}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(rebound, 403, 'a foreign Host');
    const sse = await fetch(`${con.base}api/events`, { headers: { authorization: `Bearer ${con.token}`, origin: 'http://evil.example' } });
    assert.equal(sse.status, 403, 'event stream from another origin');
    assert.equal((await state()).busy, false, 'nothing started');
    // The same origin is fine.
    assert.equal((await con.api('getState', {}, { origin: `http://127.0.0.1:${con.port}` })).status, 200);
  });

  it('malformed bodies → 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [{ source: { kind: 'web', url: 'not a url' } }, /^source\.url: /],
      [{ source: { kind: 'room', serverUrl: 'http://x', roomName: 'r' } }, /^source\.serverUrl: must be a ws/],
      [{ source: { kind: 'room', serverUrl: 'ws://x' } }, /^source\.roomName: Required/],
      [{ preset: 'H264_4K' }, /^preset: /],
      [{ outputs: { rtmpUrl: 'http://x/y' } }, /^outputs\.rtmpUrl: must be an rtmp/],
      [{ durationS: -1 }, /^durationS: /],
      [{ surprise: true }, /^unknown field surprise/],
    ];
    for (const [body, want] of cases) {
      const res = await con.api<{ error: string }>('start', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error, want, JSON.stringify(body));
    }
    const del = await con.api<{ error: string }>('deleteRecording', { id: '../../etc/passwd' });
    assert.equal(del.status, 400);
    assert.match(del.body.error, /^id: must be an egress id/);
    const form = await fetch(`${con.base}api/start`, { method: 'POST', headers: { authorization: `Bearer ${con.token}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    assert.equal(form.status, 415, 'a form post (what a cross-site page could send) is refused');
    // The product's own validation texts come through as they are.
    const storage = await con.api<{ error: string }>('start', { outputs: { destination: 'storage' } });
    assert.equal(storage.status, 400);
    assert.match(storage.body.error, /no storage is configured/);
    const room = await con.api<{ error: string }>('start', { source: { kind: 'room', serverUrl: 'ws://127.0.0.1:1', roomName: 'r' } });
    assert.equal(room.status, 400);
    assert.equal(room.body.error, 'a room needs an API key and secret, or a token');
    assert.equal((await state()).busy, false);
  });

  it('settings are kept between runs (without secrets)', async () => {
    const saved = await con.api('saveSettings', { sourceKind: 'room', serverUrl: 'wss://lk.example', roomName: 'studio', apiKey: 'APIkey', preset: 'H264_1080P_30' });
    assert.equal(saved.status, 200);
    assert.equal((await con.api<{ roomName: string }>('getSettings')).body.roomName, 'studio');
    const onDisk = JSON.parse(await readFile(join(tmp.path, 'config', 'settings.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(onDisk['serverUrl'], 'wss://lk.example');
    assert.equal((await con.api<{ error: string }>('saveSettings', { apiSecret: 's' })).status, 400, 'a secret is not a setting');
    await con.api('saveSettings', {});
  });

  it('the live preview is a small JPEG of the captured picture, also of a page that never repaints', async () => {
    // One paint, then nothing: no frame follows the capture's first, so every preview comes from it.
    const dir = join(tmp.path, 'still-page');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'index.html'), '<!doctype html><html><body style="margin:0;background:rgb(30,80,200)"></body></html>');
    const pages = new StaticServer(dir);
    const url = await pages.listen();
    const abort = new AbortController();
    try {
      const events = await fetch(`${con.base}api/events`, { headers: { authorization: `Bearer ${con.token}` }, signal: abort.signal });
      const previews: { egressId: string; jpeg: string }[] = [];
      void (async () => {
        const decoder = new TextDecoder();
        let text = '';
        for await (const chunk of events.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (block.startsWith('event: preview') && data) previews.push(JSON.parse(data) as { egressId: string; jpeg: string });
          }
        }
      })().catch(() => undefined);
      const started = await con.api<BoothState>('start', { source: { kind: 'web', url } });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const egressId = started.body.recording?.egressId ?? '';
      // Previews come once the recording is ACTIVE. This is the first recording of a CI run, whose
      // Chromium and GStreamer start cold (up to ~20 s here): the 30 s for three previews count from
      // ACTIVE, not from the start (they ran out twice in clean-clone runs).
      await waitActive(state);
      const mine = await waitFor('three previews', () => {
        const m = previews.filter((p) => p.egressId === egressId);
        return m.length >= 3 ? m : null;
      }, 30_000);
      assert.equal((await con.api('stop')).status, 200);
      await waitFor('the recording to end', async () => !(await state()).busy);
      for (const [i, p] of mine.slice(0, 3).entries()) {
        assert.match(p.jpeg, /^data:image\/jpeg;base64,\/9j\//, 'a JPEG');
        const file = join(dir, `preview-${i}.jpg`);
        await writeFile(file, Buffer.from(p.jpeg.slice(p.jpeg.indexOf(',') + 1), 'base64'));
        const probe = await ffprobe(file);
        assert.deepEqual([probe.streams[0]?.width, probe.streams[0]?.height], [320, 180], 'scaled to the preview width, the page\'s aspect');
        // Its picture: the page's colour (one pixel, averaged over the whole image).
        const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', file, '-vf', 'scale=1:1:flags=area', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer' });
        const rgb = [...(stdout as Buffer)];
        assert.ok(Math.abs((rgb[0] ?? 0) - 30) <= 12 && Math.abs((rgb[1] ?? 0) - 80) <= 12 && Math.abs((rgb[2] ?? 0) - 200) <= 12, `preview colour ${rgb.join(',')}`);
      }
    } finally {
      abort.abort();
      // A failed check must not leave its recording running into the next test.
      if ((await state()).busy) {
        await con.api('stop');
        await waitFor('the recording to end', async () => !(await state()).busy);
      }
      await pages.close();
    }
  });

  it('two starts at once: one records, the other is refused (409); a stop during a pause completes the file', async () => {
    const [a, b] = await Promise.all([con.api<BoothState & { error?: string }>('start', {}), con.api<BoothState & { error?: string }>('start', {})]);
    const refused = [a, b].filter((r) => r.status === 409);
    const accepted = [a, b].filter((r) => r.status === 200);
    assert.equal(accepted.length, 1, `${a.status} ${JSON.stringify(a.body)} / ${b.status} ${JSON.stringify(b.body)}`);
    assert.equal(refused.length, 1);
    const egressId = accepted[0]?.body.recording?.egressId ?? '';
    assert.match(refused[0]?.body.error ?? '', new RegExp(`^a recording is already running \\(${egressId}\\): stop it before starting another$`));

    const active = await waitActive(state);
    // ACTIVE is reported once the pipeline plays, a moment after the recording's first instant.
    await new Promise((r) => setTimeout(r, Math.max(0, active.startedAtMs + 2000 - Date.now())));
    const paused = await con.api<BoothState>('pause');
    assert.equal(paused.status, 200);
    assert.equal(paused.body.recording?.status, 'PAUSED');
    assert.equal((await con.api<{ error: string }>('pause')).body.error, 'the recording is already paused');
    assert.equal((await con.api<{ error: string }>('start', {})).status, 409, 'still refused while paused');
    await new Promise((r) => setTimeout(r, 1500));
    const sizeAtStop = (await state()).recording?.bytes ?? 0;
    assert.equal((await con.api('stop')).status, 200);
    const done = await waitFor('the recording to end', async () => {
      const s = await state();
      return !s.busy && s.recording?.egressId === egressId ? s.recording : null;
    });
    assert.equal(done.status, 'COMPLETE', `${done.status}: ${done.error}`);
    assert.match(done.details, /^End reason: StopEgress API; paused \S+\/\S+$/);
    const list = (await con.api<RecordingEntry[]>('listRecordings')).body;
    const entry = list[0];
    assert.equal(entry?.id, egressId, 'the new recording is on top');
    assert.equal(entry?.status, 'EGRESS_COMPLETE');
    assert.ok(entry?.playable);
    // Local storage reports its progress once, when the file is stored: all of it.
    assert.deepEqual(done.upload, { sentBytes: entry.sizeBytes, totalBytes: entry.sizeBytes }, 'upload progress of the stored file');
    const p = await ffprobe(entry.location);
    assert.ok(videoStream(p));
    const duration = Number(p.format.duration);
    console.log(`# stopped while paused: file ${duration.toFixed(2)} s, listed ${entry.durationS.toFixed(2)} s, ${entry.sizeBytes} bytes (${sizeAtStop} at the stop)`);
    // What was recorded before the pause (about 2 s; later on a loaded machine); the paused time is not in the file.
    const pausedFrom = Date.parse(/paused (\S+)\//.exec(done.details)?.[1] ?? '');
    const beforePauseS = (pausedFrom - Date.parse(entry.startedAt)) / 1000;
    console.log(`# recorded before the pause: ${beforePauseS.toFixed(2)} s (pause asked ${((pausedFrom - active.startedAtMs) / 1000).toFixed(2)} s after the start)`);
    assert.ok(Math.abs(duration - beforePauseS) <= 0.3, `file ${duration.toFixed(2)} s, recorded before the pause ${beforePauseS.toFixed(2)} s`);
    assert.ok(Math.abs(duration - entry.durationS) <= 0.3, `file ${duration} s vs listed ${entry.durationS} s`);
    // The decoder reads it through to the end.
    const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', entry.location, '-f', 'null', '-'], { maxBuffer: 16 * 1024 * 1024 });
    assert.equal(stderr.trim(), '');

    // Play: the file over the API (with Range, as a <video> asks).
    const file = await fetch(`${con.base}api/recordings/${egressId}/file`, { headers: { authorization: `Bearer ${con.token}`, range: 'bytes=0-99' } });
    assert.equal(file.status, 206);
    assert.equal(file.headers.get('content-type'), 'video/mp4');
    assert.equal((await file.arrayBuffer()).byteLength, 100);
    const reveal = await con.api<{ path: string; revealed: boolean }>('revealRecording', { id: egressId });
    assert.deepEqual(reveal.body, { path: entry.location, revealed: false }, 'the console shows the path');
    // Delete: gone from the list and from the disk.
    const left = await con.api<RecordingEntry[]>('deleteRecording', { id: egressId });
    assert.equal(left.status, 200);
    assert.ok(!left.body.some((r) => r.id === egressId));
    await assert.rejects(stat(entry.location));
    assert.equal((await con.api('deleteRecording', { id: egressId })).status, 404);
  });

  it('`egress app` without the Electron binary says how to install it and points to the console', async () => {
    const res = await run(process.execPath, [join(REPO_ROOT, 'bin/egress.js'), 'app']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Electron binary is not installed/);
    assert.match(res.stderr, /npm install electron/);
    assert.match(res.stderr, /egress console/);
  });
});
