import { open, truncate, type FileHandle } from 'node:fs/promises';

/**
 * The media duration actually on disk in a fragmented MP4 (what mp4mux writes with
 * fragment-duration), read from its boxes without decoding anything. Used when the muxer did not
 * finish the file (gst-launch killed or frozen): the recording then ends at the last complete
 * fragment, which is what every player will play, and that is the duration to report.
 *
 * Per track: timescale from moov/trak/mdia/mdhd, default sample duration from moov/mvex/trex; per
 * complete moof+mdat pair: traf/tfdt (base decode time) plus the sample durations of traf/trun (or
 * the tfhd/trex default). A moof whose mdat is cut short is not counted. Returns the largest track
 * end in ns, or null if the file is not a fragmented MP4.
 */

interface Box {
  type: string;
  start: number;
  headerSize: number;
  end: number;
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  return buf.subarray(0, bytesRead);
}

/** The box starting at `pos` (null when its header does not fit in the file). */
async function boxAt(fh: FileHandle, pos: number, fileSize: number): Promise<Box | null> {
  const h = await readAt(fh, pos, 16);
  if (h.length < 8) return null;
  let size = h.readUInt32BE(0);
  const type = h.toString('latin1', 4, 8);
  let headerSize = 8;
  if (size === 1) {
    if (h.length < 16) return null;
    size = Number(h.readBigUInt64BE(8));
    headerSize = 16;
  } else if (size === 0) size = fileSize - pos;
  if (size < headerSize) return null;
  return { type, start: pos, headerSize, end: pos + size };
}

/** Child boxes of an in-memory box payload. */
function children(buf: Buffer, from = 0, to = buf.length): { type: string; body: Buffer }[] {
  const out: { type: string; body: Buffer }[] = [];
  let p = from;
  while (p + 8 <= to) {
    let size = buf.readUInt32BE(p);
    const type = buf.toString('latin1', p + 4, p + 8);
    let hdr = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(p + 8));
      hdr = 16;
    } else if (size === 0) size = to - p;
    if (size < hdr || p + size > to) break;
    out.push({ type, body: buf.subarray(p + hdr, p + size) });
    p += size;
  }
  return out;
}

const child = (buf: Buffer, type: string): Buffer | undefined => children(buf).find((c) => c.type === type)?.body;

interface Track {
  timescale: number;
  defaultDuration: number;
  endTicks: bigint;
}

function readMoov(moov: Buffer): Map<number, Track> {
  const tracks = new Map<number, Track>();
  for (const c of children(moov)) {
    if (c.type !== 'trak') continue;
    const tkhd = child(c.body, 'tkhd');
    const mdhd = child(child(c.body, 'mdia') ?? Buffer.alloc(0), 'mdhd');
    if (!tkhd || !mdhd) continue;
    const id = tkhd.readUInt8(0) === 1 ? tkhd.readUInt32BE(20) : tkhd.readUInt32BE(12);
    const timescale = mdhd.readUInt8(0) === 1 ? mdhd.readUInt32BE(20) : mdhd.readUInt32BE(12);
    tracks.set(id, { timescale, defaultDuration: 0, endTicks: 0n });
  }
  const mvex = child(moov, 'mvex');
  for (const c of mvex ? children(mvex) : []) {
    if (c.type !== 'trex') continue;
    const t = tracks.get(c.body.readUInt32BE(4));
    if (t) t.defaultDuration = c.body.readUInt32BE(12);
  }
  return tracks;
}

function readMoof(moof: Buffer, tracks: Map<number, Track>): void {
  for (const traf of children(moof)) {
    if (traf.type !== 'traf') continue;
    const tfhd = child(traf.body, 'tfhd');
    if (!tfhd) continue;
    const flags = tfhd.readUIntBE(1, 3);
    const track = tracks.get(tfhd.readUInt32BE(4));
    if (!track) continue;
    let p = 8;
    if (flags & 0x01) p += 8; // base-data-offset
    if (flags & 0x02) p += 4; // sample-description-index
    const defaultDuration = flags & 0x08 ? tfhd.readUInt32BE(p) : track.defaultDuration;
    const tfdt = child(traf.body, 'tfdt');
    let t = tfdt ? (tfdt.readUInt8(0) === 1 ? tfdt.readBigUInt64BE(4) : BigInt(tfdt.readUInt32BE(4))) : track.endTicks;
    for (const run of children(traf.body)) {
      if (run.type !== 'trun') continue;
      const rf = run.body.readUIntBE(1, 3);
      const count = run.body.readUInt32BE(4);
      let q = 8;
      if (rf & 0x01) q += 4; // data-offset
      if (rf & 0x04) q += 4; // first-sample-flags
      const per = [0x100, 0x200, 0x400, 0x800].filter((f) => rf & f).length * 4;
      for (let i = 0; i < count; i++) {
        t += BigInt(rf & 0x100 ? run.body.readUInt32BE(q) : defaultDuration);
        q += per;
      }
    }
    if (t > track.endTicks) track.endTicks = t;
  }
}

export async function fragmentedMp4DurationNs(path: string): Promise<bigint | null> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let tracks: Map<number, Track> | null = null;
    let pendingMoof: Buffer | null = null;
    for (let pos = 0; pos < size; ) {
      const box = await boxAt(fh, pos, size);
      if (!box || box.end > size) break; // cut short: not played, not counted
      if (box.type === 'moov') tracks = readMoov(await readAt(fh, box.start + box.headerSize, box.end - box.start - box.headerSize));
      else if (box.type === 'moof') pendingMoof = await readAt(fh, box.start + box.headerSize, box.end - box.start - box.headerSize);
      else if (box.type === 'mdat' && pendingMoof && tracks) {
        readMoof(pendingMoof, tracks);
        pendingMoof = null;
      }
      pos = box.end;
    }
    if (!tracks || tracks.size === 0) return null;
    let maxNs = 0n;
    for (const t of tracks.values()) {
      if (t.timescale <= 0) continue;
      const ns = (t.endTicks * 1_000_000_000n) / BigInt(t.timescale);
      if (ns > maxNs) maxNs = ns;
    }
    return maxNs;
  } finally {
    await fh.close();
  }
}

/**
 * Cuts an unfinished fragmented MP4 after its last complete moof+mdat pair: a fragment the muxer
 * could only write in part (a full disk, a killed muxer) makes decoders report errors at the end of
 * the file, and holds nothing a player would play. Returns the bytes removed (0: nothing to cut, or
 * not a fragmented MP4).
 */
export async function truncateToCompleteFragments(path: string): Promise<number> {
  const fh = await open(path, 'r');
  let keep = -1;
  let size = 0;
  try {
    size = (await fh.stat()).size;
    let sawMoov = false;
    let moofOpen = false;
    for (let pos = 0; pos < size; ) {
      const box = await boxAt(fh, pos, size);
      if (!box || box.end > size) break;
      if (box.type === 'moov') {
        sawMoov = true;
        keep = box.end;
      } else if (box.type === 'moof') moofOpen = true;
      else if (box.type === 'mdat' && moofOpen) {
        moofOpen = false;
        keep = box.end;
      } else if (!moofOpen && sawMoov) keep = box.end; // mfra and the like after a complete fragment
      pos = box.end;
    }
    if (!sawMoov) return 0;
  } finally {
    await fh.close();
  }
  if (keep < 0 || keep >= size) return 0;
  await truncate(path, keep);
  return size - keep;
}
