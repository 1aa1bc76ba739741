/*
 * Layout geometry of the default room-composite template (templates/room). PURE: no DOM, no
 * livekit-client — the page (main.ts) positions every tile absolutely at exactly these rects, and the
 * node tests import this module (compiled to dist/templates/room/src/geometry.js) to know where each
 * publisher's video lands in the recorded frame.
 *
 * Geometry follows what LiveKit Egress's default template (template-default, built on
 * @livekit/components-react + components-styles) puts on screen, as its own integration test
 * (test/layout.go in github.com/livekit/egress) measures it:
 *  - grid: cells of equal size, 8 px gaps between cells, flush with the frame edges (no outer
 *    padding); columns by tile count and width (gridColumns), rows = ceil(count / columns);
 *  - speaker: two columns 1fr : 5fr with one 8 px gap; the carousel (left) stacks thumbnails the
 *    carousel's width wide at 16:10, from the top, without gaps (thumbnails that do not fit are cut
 *    off by the frame); the stage (right) is full height. With a single track it is full-frame;
 *  - single-speaker: only the top track, full-frame.
 *
 * Tile ORDER (see orderTracks / stageIndex): tile i is the i-th track of
 *   1. screen shares, then cameras, then tracks of unknown source;
 *   2. within each group, by participant join time (ParticipantInfo.joined_at, whole seconds), ties
 *      broken by participant identity (string order), then by track sid.
 * So publishers that join one after another (or share a second and are named p1, p2, ... in order)
 * take cells 0, 1, 2... row by row, left to right. In speaker layouts tile 0 is the stage: the first
 * screen share if any, else the camera of the current active speaker — sticky: it keeps the stage
 * while it keeps speaking and until another participant becomes the top active speaker — else the
 * first track; tiles 1.. are the other tracks in the order above (the carousel, top to bottom).
 * With no one ever speaking the stage is simply tile 0 of the order.
 */

export interface Rect {
  /** CSS px from the left edge of the page (= the recorded frame). */
  x: number;
  y: number;
  w: number;
  h: number;
}

export type LayoutKind = 'grid' | 'speaker' | 'single-speaker';

export interface LayoutResult {
  kind: LayoutKind;
  /** Light theme (layout ends with "-light"): white background instead of black. */
  light: boolean;
  /** Speaker layouts with a stage: the stage rect (= tiles[0]). */
  stage?: Rect;
  /**
   * One rect per rendered track, tile i = i-th track of the template's order. May be shorter than
   * tileCount (single-speaker renders one track; grid renders at most 25, like the original's first
   * page). Carousel rects may extend below the frame (those thumbnails are cut off).
   */
  tiles: Rect[];
}

/** Gap between grid cells and between the carousel and the stage (components-styles --grid-gap). */
export const GRID_GAP = 8;
/** Carousel thumbnail aspect ratio (width / height). */
export const THUMB_ASPECT = 16 / 10;
/** Largest grid (5x5); more tracks than this are not shown (the original paginates). */
export const MAX_GRID_TILES = 25;

export function isLightTheme(layout: string): boolean {
  return layout.endsWith('-light');
}

/** The layout actually drawn: a screen share turns grid* into speaker*. */
export function effectiveLayout(layout: string, hasScreenShare: boolean): LayoutKind {
  let l = layout;
  if (hasScreenShare && l.startsWith('grid')) l = l.replace('grid', 'speaker');
  if (l.startsWith('speaker')) return 'speaker';
  if (l.startsWith('single-speaker')) return 'single-speaker';
  return 'grid';
}

/** Grid columns for a tile count and page width (LiveKit components' default grid layouts). */
export function gridColumns(count: number, width: number): number {
  if (count <= 1) return 1;
  if (count <= 4) return width >= 560 ? 2 : 1;
  if (count <= 9) return width >= 700 ? 3 : 2;
  if (count <= 16) return width >= 960 ? 4 : 3;
  return width >= 1100 ? 5 : 4;
}

export function gridRects(count: number, width: number, height: number): Rect[] {
  const n = Math.min(count, MAX_GRID_TILES);
  if (n <= 0) return [];
  const cols = gridColumns(n, width);
  const rows = Math.ceil(n / cols);
  const w = (width - (cols - 1) * GRID_GAP) / cols;
  const h = (height - (rows - 1) * GRID_GAP) / rows;
  const out: Rect[] = [];
  for (let i = 0; i < n; i++) {
    const col = i % cols;
    const row = Math.floor(i / cols);
    out.push({ x: col * (w + GRID_GAP), y: row * (h + GRID_GAP), w, h });
  }
  return out;
}

/** Speaker layout: tiles[0] = stage, tiles[1..] = carousel thumbnails top to bottom. */
export function speakerRects(count: number, width: number, height: number): { stage?: Rect; tiles: Rect[] } {
  if (count <= 0) return { tiles: [] };
  const full: Rect = { x: 0, y: 0, w: width, h: height };
  if (count === 1) return { stage: full, tiles: [full] };
  const carouselW = (width - GRID_GAP) / 6;
  const stage: Rect = { x: carouselW + GRID_GAP, y: 0, w: width - GRID_GAP - carouselW, h: height };
  const thumbH = carouselW / THUMB_ASPECT;
  const tiles: Rect[] = [stage];
  for (let i = 0; i < count - 1; i++) tiles.push({ x: 0, y: i * thumbH, w: carouselW, h: thumbH });
  return { stage, tiles };
}

/**
 * Where each tile goes. `layout` is the raw layout string (query param or UpdateLayout), tileCount
 * the number of subscribed remote video tracks (camera / screen share / unknown), width x height
 * the page size (= the encoding size), hasScreenShare whether one of them is a screen share.
 */
export function layoutRects(layout: string, tileCount: number, width: number, height: number, hasScreenShare: boolean): LayoutResult {
  const kind = effectiveLayout(layout, hasScreenShare);
  const light = isLightTheme(layout);
  if (kind === 'grid') return { kind, light, tiles: gridRects(tileCount, width, height) };
  if (kind === 'single-speaker') {
    const tiles = tileCount > 0 ? [{ x: 0, y: 0, w: width, h: height }] : [];
    return tiles[0] ? { kind, light, stage: tiles[0], tiles } : { kind, light, tiles };
  }
  const r = speakerRects(tileCount, width, height);
  return r.stage ? { kind, light, stage: r.stage, tiles: r.tiles } : { kind, light, tiles: r.tiles };
}

export type TileSource = 'screen_share' | 'camera' | 'unknown';

export interface TrackOrderKey {
  source: TileSource;
  /** Participant join time (seconds since epoch as the server reports it; 0 if unknown). */
  joinedAt: number;
  identity: string;
  trackSid: string;
}

const SOURCE_RANK: Record<TileSource, number> = { screen_share: 0, camera: 1, unknown: 2 };

/** The template's base order of tiles (a new array; see the module comment). */
export function orderTracks<T extends TrackOrderKey>(tracks: readonly T[]): T[] {
  return [...tracks].sort(
    (a, b) =>
      SOURCE_RANK[a.source] - SOURCE_RANK[b.source] ||
      a.joinedAt - b.joinedAt ||
      cmp(a.identity, b.identity) ||
      cmp(a.trackSid, b.trackSid),
  );
}

/**
 * Index (into orderTracks' result) of the stage track of a speaker layout: the first screen share,
 * else the first track of `speakerIdentity` (the sticky active speaker), else 0. -1 if empty.
 */
export function stageIndex(ordered: readonly TrackOrderKey[], speakerIdentity: string | undefined): number {
  if (ordered.length === 0) return -1;
  if (ordered[0]!.source === 'screen_share') return 0;
  if (speakerIdentity !== undefined) {
    const i = ordered.findIndex((t) => t.identity === speakerIdentity && t.source === 'camera');
    if (i >= 0) return i;
    const j = ordered.findIndex((t) => t.identity === speakerIdentity);
    if (j >= 0) return j;
  }
  return 0;
}

/** The tracks in tile order for a layout: speaker layouts move the stage track to the front. */
export function tileOrder<T extends TrackOrderKey>(tracks: readonly T[], layout: string, speakerIdentity: string | undefined): T[] {
  const ordered = orderTracks(tracks);
  const kind = effectiveLayout(layout, ordered.some((t) => t.source === 'screen_share'));
  if (kind === 'grid') return ordered;
  const s = stageIndex(ordered, speakerIdentity);
  if (s <= 0) return ordered;
  return [ordered[s]!, ...ordered.slice(0, s), ...ordered.slice(s + 1)];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
