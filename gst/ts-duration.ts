import { readFile } from 'node:fs/promises';

/**
 * Media duration of an MPEG-TS file (a segment cut short when the pipeline died): from the first
 * to the last PES timestamp of one stream (video when present, else audio), in ns, plus one frame.
 * Returns null when no timestamps are found.
 */
export async function tsDurationNs(path: string, frameNs: bigint): Promise<bigint | null> {
  const data = await readFile(path);
  const first = new Map<number, bigint>();
  const last = new Map<number, bigint>();
  let video: number | null = null;
  for (let i = 0; i + 188 <= data.length; i += 188) {
    if (data[i] !== 0x47) continue;
    const b1 = data[i + 1] ?? 0;
    if ((b1 & 0x40) === 0) continue; // not the start of a PES
    const pid = ((b1 & 0x1f) << 8) | (data[i + 2] ?? 0);
    const afc = ((data[i + 3] ?? 0) >> 4) & 3;
    let p = i + 4;
    if (afc === 2) continue;
    if (afc === 3) p += 1 + (data[p] ?? 0);
    if (p + 14 > i + 188 || data[p] !== 0 || data[p + 1] !== 0 || data[p + 2] !== 1) continue;
    const streamId = data[p + 3] ?? 0;
    if ((((data[p + 7] ?? 0) >> 6) & 2) === 0) continue; // no PTS
    const b = (k: number): bigint => BigInt(data[p + 9 + k] ?? 0);
    const pts = (((b(0) >> 1n) & 7n) << 30n) | (b(1) << 22n) | ((b(2) >> 1n) << 15n) | (b(3) << 7n) | (b(4) >> 1n);
    if (streamId >= 0xe0 && streamId <= 0xef) video ??= pid;
    if (!first.has(pid)) first.set(pid, pts);
    last.set(pid, pts);
  }
  const pid = video ?? first.keys().next().value;
  if (pid === undefined) return null;
  const a = first.get(pid);
  const z = last.get(pid);
  if (a === undefined || z === undefined) return null;
  return ((z - a) * 100_000n) / 9n + frameNs;
}
