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

/**
 * Ends a finished fragmented MP4 at `cutNs` (file time), to the sample: every track keeps the
 * samples that start before the cut, fragments after it are dropped and the fragment holding it is
 * rewritten with its earlier samples only (mp4mux writes one track per moof+mdat; a fragment laid
 * out otherwise is kept whole). The movie-extends duration (mehd) is set to what is left, so players
 * show it. Returns the bytes removed (0: nothing after the cut, or not a fragmented MP4).
 */
export async function truncateFragmentsAfter(path: string, cutNs: bigint): Promise<number> {
  const fh = await open(path, 'r+');
  let size = 0;
  let newSize = 0;
  try {
    size = (await fh.stat()).size;
    let tracks: Map<number, Track> | null = null;
    let moov: { box: Box; body: Buffer } | null = null;
    const fragments: { moof: Box; mdat: Box; moofBody: Buffer }[] = [];
    let pendingMoof: { box: Box; body: Buffer } | null = null;
    for (let pos = 0; pos < size; ) {
      const box = await boxAt(fh, pos, size);
      if (!box || box.end > size) break;
      if (box.type === 'moov') {
        const body = await readAt(fh, box.start + box.headerSize, box.end - box.start - box.headerSize);
        moov = { box, body };
        tracks = readMoov(body);
      } else if (box.type === 'moof') {
        pendingMoof = { box, body: await readAt(fh, box.start + box.headerSize, box.end - box.start - box.headerSize) };
      } else if (box.type === 'mdat' && pendingMoof) {
        fragments.push({ moof: pendingMoof.box, mdat: box, moofBody: pendingMoof.body });
        pendingMoof = null;
      }
      pos = box.end;
    }
    if (!moov || !tracks || fragments.length === 0) return 0;
    const parsed = fragments.map((f) => ({ ...f, info: parseFragment(f.moofBody, tracks as Map<number, Track>) }));
    const first = parsed.findIndex((f) => f.info === null || f.info.endNs > cutNs);
    if (first < 0) return 0;
    const tail: Buffer[] = [];
    for (const f of parsed.slice(first)) {
      if (!f.info) {
        // Not a layout we rewrite: keep it whole if it starts before the cut.
        if (fragmentStartNs(f.moofBody, tracks) < cutNs) tail.push(await readAt(fh, f.moof.start, f.mdat.end - f.moof.start));
        continue;
      }
      if (f.info.startNs >= cutNs) continue;
      const keep = f.info.sampleStartsNs.filter((t) => t < cutNs).length;
      if (keep >= f.info.sampleStartsNs.length) {
        tail.push(await readAt(fh, f.moof.start, f.mdat.end - f.moof.start));
        continue;
      }
      tail.push(await rewriteFragment(fh, f.mdat, f.moofBody, f.info, keep));
    }
    const at = parsed[first]?.moof.start ?? size;
    const bytes = Buffer.concat(tail);
    newSize = at + bytes.length;
    if (newSize >= size) return 0;
    await fh.write(bytes, 0, bytes.length, at);
    await fh.truncate(newSize);
    // Track ends of what is left, for the header.
    const left = readMoov(moov.body);
    for (const f of parsed.slice(0, first)) readMoof(f.moofBody, left);
    for (let pos = at; pos < newSize; ) {
      const moofBox = await boxAt(fh, pos, newSize);
      if (!moofBox) break;
      const mdatBox = await boxAt(fh, moofBox.end, newSize);
      if (moofBox.type !== 'moof' || !mdatBox) break;
      readMoof(await readAt(fh, moofBox.start + moofBox.headerSize, moofBox.end - moofBox.start - moofBox.headerSize), left);
      pos = mdatBox.end;
    }
    await patchMehd(fh, moov.box, moov.body, left);
  } finally {
    await fh.close();
  }
  return size - newSize;
}

interface FragmentInfo {
  readonly startNs: bigint;
  readonly endNs: bigint;
  /** Decode start (ns) of each sample of the fragment's one trun. */
  readonly sampleStartsNs: bigint[];
  /** Byte size of each sample (its data lies in the mdat in this order). */
  readonly sampleSizes: number[];
  /** Offsets inside the moof payload: the trun box (from its size field), and its fields. */
  readonly trunAt: number;
  readonly trafAt: number;
  readonly perSample: number;
  readonly firstSampleAt: number;
  /** Byte offset of the sample data inside the mdat payload. */
  readonly dataAt: number;
}

/** The one-track, one-run layout mp4mux writes; null for anything else. */
function parseFragment(moof: Buffer, tracks: Map<number, Track>): FragmentInfo | null {
  const top = childrenAt(moof, 0, moof.length);
  const trafs = top.filter((c) => c.type === 'traf');
  if (trafs.length !== 1) return null;
  const traf = trafs[0] as { type: string; at: number; size: number; hdr: number };
  const inner = childrenAt(moof, traf.at + traf.hdr, traf.at + traf.size);
  const tfhdBox = inner.find((c) => c.type === 'tfhd');
  const tfdtBox = inner.find((c) => c.type === 'tfdt');
  const truns = inner.filter((c) => c.type === 'trun');
  if (!tfhdBox || !tfdtBox || truns.length !== 1) return null;
  const tfhd = moof.subarray(tfhdBox.at + tfhdBox.hdr, tfhdBox.at + tfhdBox.size);
  const tfdt = moof.subarray(tfdtBox.at + tfdtBox.hdr, tfdtBox.at + tfdtBox.size);
  const flags = tfhd.readUIntBE(1, 3);
  const track = tracks.get(tfhd.readUInt32BE(4));
  if (!track || track.timescale <= 0 || flags & 0x01) return null; // an explicit base offset: not ours
  let p = 8;
  if (flags & 0x02) p += 4;
  const defaultDuration = flags & 0x08 ? tfhd.readUInt32BE(p) : track.defaultDuration;
  if (flags & 0x08) p += 4;
  const defaultSize = flags & 0x10 ? tfhd.readUInt32BE(p) : 0;
  const trunBox = truns[0] as { type: string; at: number; size: number; hdr: number };
  const run = moof.subarray(trunBox.at + trunBox.hdr, trunBox.at + trunBox.size);
  const rf = run.readUIntBE(1, 3);
  if (!(rf & 0x01)) return null; // no data offset: not ours
  const count = run.readUInt32BE(4);
  const dataOffset = run.readInt32BE(8);
  let q = 12;
  if (rf & 0x04) q += 4;
  const perSample = [0x100, 0x200, 0x400, 0x800].filter((f) => rf & f).length * 4;
  if (!(rf & 0x200) && defaultSize === 0) return null;
  let t = tfdt.readUInt8(0) === 1 ? tfdt.readBigUInt64BE(4) : BigInt(tfdt.readUInt32BE(4));
  const scale = BigInt(track.timescale);
  const startNs = (t * 1_000_000_000n) / scale;
  const sampleStartsNs: bigint[] = [];
  const sampleSizes: number[] = [];
  for (let i = 0; i < count; i++) {
    const e = q + i * perSample;
    if (e + perSample > run.length) return null;
    let f = e;
    const dur = rf & 0x100 ? run.readUInt32BE(f) : defaultDuration;
    if (rf & 0x100) f += 4;
    const sz = rf & 0x200 ? run.readUInt32BE(f) : defaultSize;
    sampleStartsNs.push((t * 1_000_000_000n) / scale);
    sampleSizes.push(sz);
    t += BigInt(dur);
  }
  // The data offset counts from the moof's first byte (mp4mux: right after the mdat header).
  const dataAt = dataOffset - (moof.length + 8) - 8;
  if (dataAt < 0) return null;
  return { startNs, endNs: (t * 1_000_000_000n) / scale, sampleStartsNs, sampleSizes, trunAt: trunBox.at, trafAt: traf.at, perSample, firstSampleAt: q, dataAt };
}

/** The fragment with its first `keep` samples only: moof (trun count, sizes, data offset) + mdat. */
async function rewriteFragment(fh: FileHandle, mdatBox: Box, moof: Buffer, info: FragmentInfo, keep: number): Promise<Buffer> {
  const removed = (info.sampleStartsNs.length - keep) * info.perSample;
  const trunPayload = info.trunAt + 8;
  const entriesEnd = trunPayload + info.firstSampleAt + info.sampleStartsNs.length * info.perSample;
  const keptEnd = trunPayload + info.firstSampleAt + keep * info.perSample;
  const body = Buffer.concat([moof.subarray(0, keptEnd), moof.subarray(entriesEnd)]);
  const shrink = (at: number): void => {
    body.writeUInt32BE(body.readUInt32BE(at) - removed, at);
  };
  shrink(info.trafAt);
  shrink(info.trunAt);
  body.writeUInt32BE(keep, trunPayload + 4);
  const moofSize = body.length + 8;
  body.writeInt32BE(moofSize + 8 + info.dataAt, trunPayload + 8);
  const dataLen = info.sampleSizes.slice(0, keep).reduce((a, b) => a + b, 0);
  const data = await readAt(fh, mdatBox.start + mdatBox.headerSize, info.dataAt + dataLen);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(moofSize, 0);
  head.write('moof', 4, 'latin1');
  const mdatHead = Buffer.alloc(8);
  mdatHead.writeUInt32BE(8 + data.length, 0);
  mdatHead.write('mdat', 4, 'latin1');
  return Buffer.concat([head, body, mdatHead, data]);
}

/** Child boxes of a region of a buffer, with their offsets. */
function childrenAt(buf: Buffer, from: number, to: number): { type: string; at: number; size: number; hdr: number }[] {
  const out: { type: string; at: number; size: number; hdr: number }[] = [];
  for (let p = from; p + 8 <= to; ) {
    const size = buf.readUInt32BE(p);
    if (size < 8 || p + size > to) break;
    out.push({ type: buf.toString('latin1', p + 4, p + 8), at: p, size, hdr: 8 });
    p += size;
  }
  return out;
}

/** Earliest decode time (ns) of a fragment's tracks. */
function fragmentStartNs(moof: Buffer, tracks: Map<number, Track>): bigint {
  let min: bigint | null = null;
  for (const traf of children(moof)) {
    if (traf.type !== 'traf') continue;
    const tfhd = child(traf.body, 'tfhd');
    const tfdt = child(traf.body, 'tfdt');
    const track = tfhd ? tracks.get(tfhd.readUInt32BE(4)) : undefined;
    if (!tfdt || !track || track.timescale <= 0) continue;
    const ticks = tfdt.readUInt8(0) === 1 ? tfdt.readBigUInt64BE(4) : BigInt(tfdt.readUInt32BE(4));
    const ns = (ticks * 1_000_000_000n) / BigInt(track.timescale);
    if (min === null || ns < min) min = ns;
  }
  return min ?? 0n;
}

/** Rewrites moov/mvex/mehd (in the mvhd timescale) to the longest track end now in the file. */
async function patchMehd(fh: FileHandle, moovBox: Box, moov: Buffer, tracks: Map<number, Track>): Promise<void> {
  const mvhd = child(moov, 'mvhd');
  if (!mvhd) return;
  const movieScale = BigInt(mvhd.readUInt8(0) === 1 ? mvhd.readUInt32BE(20) : mvhd.readUInt32BE(12));
  let ticks = 0n;
  for (const t of tracks.values()) {
    if (t.timescale <= 0) continue;
    const m = (t.endTicks * movieScale) / BigInt(t.timescale);
    if (m > ticks) ticks = m;
  }
  // Offsets of mvex and mehd inside moov's payload.
  for (let p = 0; p + 8 <= moov.length; ) {
    const s = moov.readUInt32BE(p);
    if (s < 8) return;
    if (moov.toString('latin1', p + 4, p + 8) === 'mvex') {
      for (let q = p + 8; q + 8 <= p + s; ) {
        const s2 = moov.readUInt32BE(q);
        if (s2 < 8) return;
        if (moov.toString('latin1', q + 4, q + 8) === 'mehd') {
          const version = moov.readUInt8(q + 8);
          const at = moovBox.start + moovBox.headerSize + q + 12;
          const buf = Buffer.alloc(version === 1 ? 8 : 4);
          if (version === 1) buf.writeBigUInt64BE(ticks);
          else buf.writeUInt32BE(Number(ticks > 0xffffffffn ? 0xffffffffn : ticks));
          await fh.write(buf, 0, buf.length, at);
          return;
        }
        q += s2;
      }
      return;
    }
    p += s;
  }
}
