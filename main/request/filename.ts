import path from 'node:path';
import { EgressError, errInvalidField } from '../contracts/errors.js';
import type { FileType, ImageSuffix, SegmentSuffix } from '../contracts/pipeline.js';

/**
 * Filename templating and the HLS/image naming rules.
 * Placeholders are replaced by plain string substitution; unresolvable ones stay literally.
 */

/** `output configuration does not support retry` (412). */
export function errNonRetryableOutput(): EgressError {
  return new EgressError('E_INVALID_INPUT', 'failed_precondition', 'output configuration does not support retry');
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `{time}`: process-local time as `2006-01-02T150405`. */
export function formatTime(now: Date): string {
  return (
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}` +
    `T${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`
  );
}

/** `{utc}`: real UTC as `YYYYMMDDhhmmss` + 3-digit milliseconds (the original used local time). */
export function formatUtc(now: Date): string {
  return (
    `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}${pad(now.getUTCMilliseconds(), 3)}`
  );
}

export interface FilenameContext {
  /** `<identifier>-<time>` is the default name: room name, or `web` without a room. */
  readonly identifier: string;
  /** Placeholder → value, applied in insertion order. */
  readonly replacements: ReadonlyMap<string, string>;
  readonly now: Date;
  readonly retryCount: number;
}

export function filenameContext(opts: { roomName?: string; roomId?: string; retryCount?: number; now: Date }): FilenameContext {
  const retryCount = opts.retryCount ?? 0;
  const r = new Map<string, string>();
  if (retryCount > 0) r.set('{retry}', String(retryCount));
  const roomName = opts.roomName ?? '';
  if (roomName !== '') {
    r.set('{room_name}', roomName);
    r.set('{room_id}', opts.roomId ?? '');
  }
  r.set('{time}', formatTime(opts.now));
  r.set('{utc}', formatUtc(opts.now));
  return { identifier: roomName !== '' ? roomName : 'web', replacements: r, now: opts.now, retryCount };
}

export function applyReplacements(s: string, replacements: ReadonlyMap<string, string>): string {
  let out = s;
  for (const [k, v] of replacements) out = out.split(k).join(v);
  return out;
}

/** `<identifier>-<time>[-<retry>]` */
export function defaultBaseName(ctx: FilenameContext): string {
  const base = `${ctx.identifier}-${formatTime(ctx.now)}`;
  return ctx.retryCount > 0 ? `${base}-${ctx.retryCount}` : base;
}

/**
 * Path cleaning: like Go's path.Clean, leading `../` removed, `.`/`..`/'' → '', a trailing `/`
 * kept (it means "directory").
 */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const trailing = p.endsWith('/');
  let c = path.posix.normalize(p);
  if (c.length > 1 && c.endsWith('/')) c = c.slice(0, -1);
  while (c.startsWith('../')) c = c.slice(3);
  if (c === '' || c === '.' || c === '..') return '';
  if (trailing && c !== '/') return `${c}/`;
  return c;
}

/** Go's path.Split: dir keeps its trailing slash. */
export function splitPath(p: string): [dir: string, base: string] {
  const i = p.lastIndexOf('/');
  return [p.slice(0, i + 1), p.slice(i + 1)];
}

export const KNOWN_EXTENSIONS = ['.raw', '.ogg', '.mp3', '.ivf', '.mp4', '.ts', '.webm', '.m3u8', '.jpeg'] as const;

export const EXTENSION_OF: Readonly<Record<FileType, string>> = { mp4: '.mp4', ogg: '.ogg', mp3: '.mp3', webm: '.webm' };

/** Removes a trailing known extension (`x.mp4` → `x`; `x.dat` stays). */
export function stripKnownExtension(name: string): string {
  const i = name.lastIndexOf('.');
  if (i < 0) return name;
  return (KNOWN_EXTENSIONS as readonly string[]).includes(name.slice(i)) ? name.slice(0, i) : name;
}

/** Retry rule for an explicit file path (already cleaned). */
export function checkFileRetry(cleaned: string, retryCount: number): void {
  if (retryCount > 0 && cleaned !== '' && !cleaned.endsWith('/') && !cleaned.includes('{retry}')) {
    throw errNonRetryableOutput();
  }
}

/**
 * Storage path of a file output: templated; empty or directory → `<dir><identifier>-<time>`;
 * the right extension appended (a wrong known one replaced). `cleaned` must be cleanPath'd.
 */
export function fileStoragePath(cleaned: string, ext: string, ctx: FilenameContext): string {
  let p = applyReplacements(cleaned, ctx.replacements);
  if (p === '' || p.endsWith('/')) {
    p = `${p}${defaultBaseName(ctx)}${ext}`;
  } else if (!p.endsWith(ext)) {
    p = stripKnownExtension(p) + ext;
  }
  return p;
}

/** Local file: `<tmpDir>/<basename of storage path>`. */
export function localFilePath(tmpDir: string, storagePath: string): string {
  return path.join(tmpDir, splitPath(storagePath)[1]);
}

export interface SegmentNaming {
  readonly storageDir: string;
  readonly playlistFilename: string;
  readonly livePlaylistFilename: string;
  readonly segmentPrefix: string;
  readonly playlistName: string;
  readonly livePlaylistName: string;
}

/** Retry rule for segments: an explicit prefix (or, without one, an explicit playlist) needs `{retry}`. */
export function checkSegmentsRetry(prefix: string, playlist: string, retryCount: number): void {
  if (retryCount <= 0) return;
  if (prefix !== '' && !prefix.includes('{retry}')) throw errNonRetryableOutput();
  if (prefix === '' && playlist !== '' && !playlist.includes('{retry}')) throw errNonRetryableOutput();
}

/**
 * HLS naming: inputs are the request's filename_prefix, playlist_name and
 * live_playlist_name. Strips only known extensions from playlist names (our choice: the original strips any extension).
 */
export function segmentNaming(filenamePrefix: string, playlistName: string, livePlaylistName: string, ctx: FilenameContext): SegmentNaming {
  const prefix = applyReplacements(cleanPath(filenamePrefix), ctx.replacements);
  const playlist = applyReplacements(cleanPath(playlistName), ctx.replacements);
  const live = applyReplacements(cleanPath(livePlaylistName), ctx.replacements);

  let [playlistDir, playlistBase] = splitPath(playlist);
  const [liveDir, liveBaseRaw] = splitPath(live);
  let [segmentDir, segmentBase] = splitPath(prefix);

  if (liveDir !== '' && liveDir !== playlistDir) {
    throw errInvalidField('live_playlist_name must be in same directory as playlist_name');
  }
  playlistBase = stripKnownExtension(playlistBase);
  const liveBase = stripKnownExtension(liveBaseRaw);

  if (segmentDir !== '') {
    if (playlistDir === segmentDir) {
      segmentDir = '';
    } else if (playlistDir === '') {
      playlistDir = segmentDir;
      segmentDir = '';
    }
  }

  if (playlistBase === '') playlistBase = segmentBase !== '' ? segmentBase : defaultBaseName(ctx);
  if (segmentBase === '') segmentBase = playlistBase;

  const playlistFilename = `${playlistBase}.m3u8`;
  const livePlaylistFilename = liveBase !== '' ? `${liveBase}.m3u8` : '';
  if (playlistFilename === livePlaylistFilename) {
    throw errInvalidField('live_playlist_name cannot be identical to playlist_name');
  }
  return {
    storageDir: playlistDir,
    playlistFilename,
    livePlaylistFilename,
    segmentPrefix: `${segmentDir}${segmentBase}`,
    playlistName: path.posix.join(playlistDir, playlistFilename),
    livePlaylistName: livePlaylistFilename !== '' ? path.posix.join(playlistDir, livePlaylistFilename) : '',
  };
}

/** Image prefix: templated, split into dir + name prefix; empty name → `<identifier>-<time>`. */
export function imageNaming(filenamePrefix: string, ctx: FilenameContext): { storageDir: string; imagePrefix: string } {
  const prefix = applyReplacements(cleanPath(filenamePrefix), ctx.replacements);
  const [storageDir, base] = splitPath(prefix);
  return { storageDir, imagePrefix: base !== '' ? base : defaultBaseName(ctx) };
}

/** Segment file name for a fragment (INDEX: `<prefix>_00000.ts`). */
export function segmentFilename(prefix: string, suffix: SegmentSuffix, index: number, at?: Date): string {
  if (suffix === 'timestamp' && at) return `${prefix}_${formatStamp(at)}.ts`;
  return `${prefix}_${String(index).padStart(5, '0')}.ts`;
}

/** Image file name (INDEX: `<prefix>_00000.jpeg`, NONE_OVERWRITE: `<prefix>.jpeg`). */
export function imageFilename(prefix: string, suffix: ImageSuffix, index: number, at?: Date): string {
  if (suffix === 'none_overwrite') return `${prefix}.jpeg`;
  if (suffix === 'timestamp' && at) return `${prefix}_${formatStamp(at)}.jpeg`;
  return `${prefix}_${String(index).padStart(5, '0')}.jpeg`;
}

/** `YYYYMMDDhhmmss` + ms in process-local time (segment/image TIMESTAMP suffix). */
export function formatStamp(at: Date): string {
  return (
    `${at.getFullYear()}${pad(at.getMonth() + 1)}${pad(at.getDate())}` +
    `${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}${pad(at.getMilliseconds(), 3)}`
  );
}
