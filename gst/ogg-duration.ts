import { open } from 'node:fs/promises';

/**
 * The media duration on disk in an Ogg Opus file, read from its pages without decoding: the granule
 * position of the last page that ends a packet, less the stream's pre-skip, at Opus' fixed 48 kHz
 * granule rate (RFC 7845 §4). Used when the muxer did not finish the file (its process was killed
 * with the egress's handler): what reached the disk is what was recorded. A page cut short at the
 * end of the file is skipped. Returns null for anything that is not Ogg Opus.
 */

const OPUS_GRANULE_RATE = 48_000n;
/** The tail read for the last page: an Ogg page is at most 65,307 bytes. */
const TAIL_BYTES = 2 * 65_536;

export async function oggOpusDurationNs(path: string): Promise<bigint | null> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, 4096));
    await fh.read(head, 0, head.length, 0);
    if (head.toString('latin1', 0, 4) !== 'OggS') return null;
    const opusHead = head.indexOf('OpusHead', 0, 'latin1');
    if (opusHead < 0 || opusHead + 12 > head.length) return null;
    const preSkip = BigInt(head.readUInt16LE(opusHead + 10));
    const serial = head.readUInt32LE(14);

    const tailStart = Math.max(0, size - TAIL_BYTES);
    const tail = Buffer.alloc(size - tailStart);
    await fh.read(tail, 0, tail.length, tailStart);
    let last: bigint | null = null;
    for (let p = tail.indexOf('OggS', 0, 'latin1'); p >= 0 && p + 27 <= tail.length; p = tail.indexOf('OggS', p + 4, 'latin1')) {
      const segments = tail[p + 26] ?? 0;
      if (p + 27 + segments > tail.length) break;
      let body = 0;
      for (let i = 0; i < segments; i++) body += tail[p + 27 + i] ?? 0;
      if (p + 27 + segments + body > tail.length) break; // cut short: its packets never reached the disk whole
      const granule = tail.readBigInt64LE(p + 6);
      // -1: no packet ends on this page; another stream's pages are not ours
      if (granule >= 0n && tail.readUInt32LE(p + 14) === serial) last = granule;
    }
    if (last === null) return null;
    const samples = last > preSkip ? last - preSkip : 0n;
    return (samples * 1_000_000_000n) / OPUS_GRANULE_RATE;
  } finally {
    await fh.close();
  }
}
