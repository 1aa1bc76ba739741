import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { SegmentsInfo } from '@livekit/protocol';
import { ffprobe } from './media.js';

/** Reading and checking HLS output the way the original's suite does. */

const run = promisify(execFile);

export interface PlaylistEntry {
  readonly pdt: Date;
  readonly duration: number;
  readonly uri: string;
}

export interface ParsedPlaylist {
  readonly version: number;
  readonly type: string;
  readonly targetDuration: number;
  readonly mediaSequence: number;
  readonly endList: boolean;
  readonly segments: PlaylistEntry[];
}

/** A strict parser for the tags we write: an unknown or out-of-place line fails the test. */
export function parsePlaylist(text: string): ParsedPlaylist {
  const lines = text.split('\n').filter((l) => l !== '');
  assert.equal(lines[0], '#EXTM3U');
  let version = 0;
  let type = '';
  let targetDuration = -1;
  let mediaSequence = -1;
  let endList = false;
  const segments: PlaylistEntry[] = [];
  let pdt: Date | null = null;
  let duration: number | null = null;
  for (const line of lines.slice(1)) {
    assert.ok(!endList, `line after ENDLIST: ${line}`);
    let m: RegExpExecArray | null;
    if ((m = /^#EXT-X-VERSION:(\d+)$/.exec(line))) version = Number(m[1]);
    else if ((m = /^#EXT-X-PLAYLIST-TYPE:(\w+)$/.exec(line))) type = m[1] as string;
    else if (line === '#EXT-X-ALLOW-CACHE:NO') continue;
    else if ((m = /^#EXT-X-TARGETDURATION:(\d+)$/.exec(line))) targetDuration = Number(m[1]);
    else if ((m = /^#EXT-X-MEDIA-SEQUENCE:(\d+)$/.exec(line))) mediaSequence = Number(m[1]);
    else if ((m = /^#EXT-X-PROGRAM-DATE-TIME:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/.exec(line))) pdt = new Date(m[1] as string);
    else if ((m = /^#EXTINF:(\d+\.\d{3}),$/.exec(line))) duration = Number(m[1]);
    else if (line === '#EXT-X-ENDLIST') endList = true;
    else if (!line.startsWith('#')) {
      assert.ok(pdt && duration !== null, `segment ${line} without PROGRAM-DATE-TIME and EXTINF`);
      segments.push({ pdt, duration, uri: line });
      pdt = null;
      duration = null;
    } else assert.fail(`unexpected playlist line ${line}`);
  }
  return { version, type, targetDuration, mediaSequence, endList, segments };
}

/** `<prefix>_YYYYMMDDhhmmssmmm.ts` → the instant it names (process-local time, like the original). */
export function timestampOfName(uri: string): Date {
  const m = /_(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d{3})\.(ts|jpeg)$/.exec(uri);
  assert.ok(m, `no timestamp in ${uri}`);
  const [y, mo, d, h, mi, s, ms] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, s, ms);
}

/** ffmpeg decodes the whole playlist: every error line it prints. */
export async function decodeErrors(playlistPath: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', playlistPath, '-f', 'null', '-'], { maxBuffer: 1 << 24 });
  return stderr.trim();
}

/** Video packet timestamps and keyframe flags of one file. */
async function videoPackets(path: string): Promise<{ pts: number; key: boolean }[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path], { maxBuffer: 1 << 26 });
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l)
    .map((l) => {
      const [pts, flags] = l.split(',');
      return { pts: Number(pts), key: (flags ?? '').includes('K') };
    })
    .sort((a, b) => a.pts - b.pts);
}

export interface HlsCheck {
  readonly playlistPath: string;
  readonly livePlaylistPath?: string;
  readonly segmentDurationS: number;
  readonly timestampNames?: boolean;
  readonly info: SegmentsInfo;
  /** Video expected (keyframe checks). */
  readonly video?: boolean;
}

/**
 * Every check the original's HLS tests make, plus ours: EVENT + ENDLIST, count vs duration, PDT deltas = EXTINF,
 * TIMESTAMP names = PDT, every segment starts with a keyframe exactly at its boundary, the whole
 * playlist decodes without an error, the live playlist holds the last 5, SegmentsInfo matches.
 */
export async function checkHls(c: HlsCheck): Promise<ParsedPlaylist> {
  const pl = parsePlaylist(await readFile(c.playlistPath, 'utf8'));
  assert.equal(pl.version, 4);
  assert.equal(pl.type, 'EVENT');
  assert.equal(pl.targetDuration, c.segmentDurationS);
  assert.equal(pl.mediaSequence, 0);
  assert.ok(pl.endList, 'ENDLIST');
  const n = pl.segments.length;
  assert.ok(n >= 2, `${n} segments`);
  const probe = await ffprobe(c.playlistPath);
  const duration = Number(probe.format.duration);
  const expected = Math.ceil(duration / c.segmentDurationS);
  assert.ok(Math.abs(n - expected) <= 1, `${n} segments for ${duration} s of ${c.segmentDurationS} s segments`);
  for (let i = 0; i + 1 < n; i++) {
    const a = pl.segments[i] as PlaylistEntry;
    const b = pl.segments[i + 1] as PlaylistEntry;
    const delta = (b.pdt.getTime() - a.pdt.getTime()) / 1000;
    assert.ok(Math.abs(delta - a.duration) <= 0.05, `segment ${i}: PDT delta ${delta} s vs EXTINF ${a.duration}`);
    // every segment but the last is exactly one segment_duration long (keyframes at the boundaries)
    assert.ok(Math.abs(a.duration - c.segmentDurationS) <= 0.001, `segment ${i} EXTINF ${a.duration}`);
  }
  const now = Date.now();
  for (const s of pl.segments) assert.ok(Math.abs(now - s.pdt.getTime()) < 300_000, `PDT ${s.pdt.toISOString()} is near now`);
  if (c.timestampNames) {
    for (const s of pl.segments) assert.ok(Math.abs(timestampOfName(s.uri).getTime() - s.pdt.getTime()) <= 1, `${s.uri} vs PDT ${s.pdt.toISOString()}`);
  } else {
    pl.segments.forEach((s, i) => assert.match(s.uri, new RegExp(`_${String(i).padStart(5, '0')}\\.ts$`)));
  }
  const dir = dirname(c.playlistPath);
  let bytes = 0;
  let firstPts: number | null = null;
  let offset = 0;
  for (const s of pl.segments) {
    const path = join(dir, s.uri);
    bytes += (await stat(path)).size;
    if (c.video !== false) {
      const packets = await videoPackets(path);
      assert.ok(packets[0]?.key, `${s.uri} starts with a keyframe`);
      firstPts ??= packets[0].pts;
      // the keyframe sits exactly on the boundary the playlist announces (one frame = 33 ms)
      assert.ok(Math.abs(packets[0].pts - firstPts - offset) < 0.002, `${s.uri} starts at ${packets[0].pts - firstPts} s, playlist says ${offset} s`);
      // One keyframe per segment. The one exception: a stop that lands within a frame after a
      // boundary records one frame there, keyframed by the boundary's request; splitmuxsink cannot
      // tell a one-frame GOP at EOS overruns the fragment (its length is only known from a next
      // frame) and leaves it at the end of the last segment. Still exactly at the boundary.
      const start = packets[0].pts;
      const keys = packets.filter((p) => p.key).map((p) => (p.pts - start).toFixed(3));
      const last = s === pl.segments[n - 1];
      const tailKeyframe = last && keys.length === 2 && packets.at(-1)?.key === true && Math.abs(Number(keys[1]) - c.segmentDurationS) < 0.002;
      assert.ok(keys.length === 1 || tailKeyframe, `${s.uri}: one keyframe per segment, found at ${keys.join(', ')} s (of ${packets.length} frames)`);
    }
    offset += s.duration;
  }
  assert.equal(await decodeErrors(c.playlistPath), '', 'ffmpeg decodes the playlist without errors');
  if (c.livePlaylistPath) {
    const live = parsePlaylist(await readFile(c.livePlaylistPath, 'utf8'));
    assert.equal(live.type, '');
    assert.ok(live.endList);
    assert.deepEqual(
      live.segments.map((s) => s.uri),
      pl.segments.slice(-5).map((s) => s.uri),
    );
    assert.equal(live.mediaSequence, Math.max(0, n - 5));
  }
  // SegmentsInfo as the original reports it
  assert.equal(Number(c.info.segmentCount), n);
  assert.equal(Number(c.info.size), bytes);
  const sum = pl.segments.reduce((a, s) => a + s.duration, 0);
  assert.ok(Math.abs(Number(c.info.duration) / 1e9 - sum) < 0.01, `duration ${c.info.duration} vs ${sum}`);
  assert.equal(Number(c.info.startedAt / 1_000_000n), pl.segments[0]?.pdt.getTime());
  assert.ok(c.info.endedAt > c.info.startedAt);
  assert.ok(c.info.playlistLocation.endsWith(basename(c.playlistPath)), c.info.playlistLocation);
  assert.ok(!c.info.playlistName.includes('{'));
  return pl;
}
