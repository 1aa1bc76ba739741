/*
 * Default room template (templates/room): the pure layout geometry its page positions tiles with
 * (and that the room egress tests use to find each publisher in the recorded frame), and the
 * missing-params error page in real Chromium. Live-room behaviour is tested end to end elsewhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CdpConnection } from '../../main/capture/cdp-connection.js';
import { findChromium } from '../../main/capture/chromium-host.js';
import { StaticServer } from '../../main/capture/static-server.js';
import {
  GRID_GAP,
  effectiveLayout,
  gridColumns,
  layoutRects,
  tileOrder,
  type Rect,
  type TrackOrderKey,
} from '../../templates/room/src/geometry.js';

const W = 1280;
const H = 720;
const near = (a: number, b: number): boolean => Math.abs(a - b) < 1e-6;
const right = (r: Rect): number => r.x + r.w;
const bottom = (r: Rect): number => r.y + r.h;

test('grid columns by tile count and width (LiveKit components defaults)', () => {
  const cases: [number, number, number][] = [
    [1, 1280, 1], [2, 1280, 2], [4, 1280, 2], [4, 559, 1], [4, 560, 2],
    [5, 1280, 3], [9, 700, 3], [9, 699, 2], [10, 1280, 4], [16, 960, 4], [16, 959, 3],
    [17, 1280, 5], [25, 1100, 5], [25, 1099, 4],
  ];
  for (const [count, width, cols] of cases) assert.equal(gridColumns(count, width), cols, `${count} tiles at ${width}px`);
});

test('grid: equal cells, 8 px gaps, flush with the frame, rows = ceil(count / columns)', () => {
  for (const count of [1, 2, 3, 4, 5, 7, 9, 10, 16, 17, 25]) {
    const { kind, tiles } = layoutRects('grid', count, W, H, false);
    assert.equal(kind, 'grid');
    assert.equal(tiles.length, count);
    const cols = gridColumns(count, W);
    const rows = Math.ceil(count / cols);
    for (const [i, r] of tiles.entries()) {
      const col = i % cols;
      const row = Math.floor(i / cols);
      assert.ok(near(r.w, (W - (cols - 1) * GRID_GAP) / cols) && near(r.h, (H - (rows - 1) * GRID_GAP) / rows), `cell size ${count}/${i}`);
      assert.ok(near(r.x, col * (r.w + 8)) && near(r.y, row * (r.h + 8)), `cell origin ${count}/${i}`);
      if (col === cols - 1) assert.ok(near(right(r), W), 'last column reaches the right edge');
      if (row === rows - 1) assert.ok(near(bottom(r), H), 'last row reaches the bottom edge');
    }
  }
  const four = layoutRects('grid', 4, W, H, false).tiles;
  assert.deepEqual(four.map((r) => [r.x, r.y, r.w, r.h]), [[0, 0, 636, 356], [644, 0, 636, 356], [0, 364, 636, 356], [644, 364, 636, 356]]);
  // Unknown and empty layouts are the grid; more than 25 tiles show the first 25.
  assert.equal(layoutRects('', 3, W, H, false).kind, 'grid');
  assert.equal(layoutRects('whatever', 3, W, H, false).kind, 'grid');
  assert.equal(layoutRects('grid', 30, W, H, false).tiles.length, 25);
  assert.deepEqual(layoutRects('grid', 0, W, H, false).tiles, []);
});

test('speaker: 1fr carousel and 5fr stage with an 8 px gap, 16:10 thumbnails; one track full-frame', () => {
  const { kind, stage, tiles } = layoutRects('speaker', 3, W, H, false);
  assert.equal(kind, 'speaker');
  const carouselW = (W - 8) / 6;
  assert.ok(stage);
  assert.deepEqual(tiles[0], stage);
  assert.ok(near(stage.x, carouselW + 8) && near(stage.w, 5 * carouselW) && stage.y === 0 && stage.h === H && near(right(stage), W));
  assert.equal(tiles.length, 3);
  for (const [i, r] of tiles.slice(1).entries()) {
    assert.ok(r.x === 0 && near(r.w, carouselW) && near(r.w / r.h, 16 / 10) && near(r.y, i * r.h), `thumb ${i}`);
  }
  assert.deepEqual(layoutRects('speaker', 1, W, H, false).tiles, [{ x: 0, y: 0, w: W, h: H }]);
  assert.equal(layoutRects('speaker-light', 2, W, H, false).light, true);
  assert.equal(layoutRects('speaker', 2, W, H, false).light, false);
});

test('single-speaker: only the top track, full-frame', () => {
  const r = layoutRects('single-speaker', 4, W, H, false);
  assert.equal(r.kind, 'single-speaker');
  assert.deepEqual(r.tiles, [{ x: 0, y: 0, w: W, h: H }]);
  assert.deepEqual(layoutRects('single-speaker-light', 0, W, H, false).tiles, []);
});

test('a screen share turns grid into speaker (and keeps the theme)', () => {
  assert.equal(effectiveLayout('grid', true), 'speaker');
  assert.equal(effectiveLayout('grid-light', true), 'speaker');
  assert.equal(effectiveLayout('grid', false), 'grid');
  assert.equal(effectiveLayout('single-speaker', true), 'single-speaker');
  const r = layoutRects('grid-light', 3, W, H, true);
  assert.equal(r.kind, 'speaker');
  assert.equal(r.light, true);
  assert.ok(r.stage && near(r.stage.x, (W - 8) / 6 + 8));
});

test('tile order: screen shares, cameras, unknown; by join time then identity; stage first in speaker layouts', () => {
  const t = (identity: string, source: TrackOrderKey['source'], joinedAt: number): TrackOrderKey => ({ identity, source, joinedAt, trackSid: `TR_${identity}_${source}` });
  const tracks = [t('p3', 'camera', 10), t('p2', 'camera', 10), t('p1', 'camera', 11), t('p0', 'unknown', 1)];
  assert.deepEqual(tileOrder(tracks, 'grid', undefined).map((x) => x.identity), ['p2', 'p3', 'p1', 'p0']);
  assert.deepEqual(tileOrder(tracks, 'speaker', 'p1').map((x) => x.identity), ['p1', 'p2', 'p3', 'p0']);
  assert.deepEqual(tileOrder(tracks, 'speaker', undefined).map((x) => x.identity), ['p2', 'p3', 'p1', 'p0']);
  const withShare = [...tracks, t('p3', 'screen_share', 10)];
  assert.deepEqual(tileOrder(withShare, 'grid', 'p1').map((x) => `${x.identity}:${x.source}`), ['p3:screen_share', 'p2:camera', 'p3:camera', 'p1:camera', 'p0:unknown']);
});


test('without url and token the page renders div.error (real Chromium)', { timeout: 20_000 }, async () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../templates/room');
  assert.ok(existsSync(join(root, 'index.html')) && existsSync(join(root, 'room.js')), 'dist/templates/room is built (npm run build)');
  const server = new StaticServer(root);
  const base = await server.listen();
  const profile = mkdtempSync(join(tmpdir(), 'tpl-test-'));
  const child = spawn(findChromium(), ['--headless=new', '--remote-debugging-pipe', '--no-sandbox', '--hide-scrollbars', `--user-data-dir=${profile}`, '--window-size=1280,720', 'about:blank'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
  });
  const cdp = new CdpConnection(child.stdio[3] as Writable, child.stdio[4] as Readable, 10_000);
  try {
    const { targetInfos } = (await cdp.send('Target.getTargets', {})) as { targetInfos: { targetId: string; type: string }[] };
    const page = targetInfos.find((t) => t.type === 'page');
    assert.ok(page);
    const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })) as { sessionId: string };
    await cdp.send('Page.navigate', { url: `${base}?layout=grid` }, sessionId);
    const deadline = Date.now() + 10_000;
    let text: unknown;
    while (Date.now() < deadline) {
      const res = (await cdp.send('Runtime.evaluate', { expression: `document.querySelector('div.error')?.innerText ?? null`, returnByValue: true }, sessionId)) as {
        result: { value?: unknown };
      };
      text = res.result.value;
      if (typeof text === 'string') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(text, 'missing required params url and token');
  } finally {
    cdp.close();
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await server.close();
    // The browser's helper processes may still be writing the profile a moment after the main one died.
    rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
});
