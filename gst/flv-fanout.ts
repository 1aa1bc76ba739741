import type { Writable } from 'node:stream';

/**
 * Splits the pipeline's FLV stream into tags and copies it to any number of subscribers that may
 * join at any time. A subscriber gets a stream of its own that a server accepts as a fresh publish:
 * the FLV header, the metadata and codec configuration tags, then media from the next video
 * keyframe (or the next audio tag without video) with timestamps starting at 0.
 */

const HEADER_LEN = 13; // 9-byte header + PreviousTagSize0
const TAG_HEADER_LEN = 11;
const TAG_AUDIO = 8;
const TAG_VIDEO = 9;
const TAG_SCRIPT = 18;

interface Tag {
  readonly type: number;
  readonly timestamp: number;
  /** The whole tag including its trailing PreviousTagSize. */
  readonly bytes: Buffer;
}

interface Subscriber {
  readonly out: Writable;
  /** Timestamp subtracted from every forwarded tag; null until its first media tag. */
  base: number | null;
}

/** Drop a subscriber's tags (not the others') while this much is still unsent to it. */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

export class FlvFanout {
  #pending: Buffer = Buffer.alloc(0);
  #header: Buffer | null = null;
  #metadata: Buffer | null = null;
  #videoConfig: Buffer | null = null;
  #audioConfig: Buffer | null = null;
  #hasVideo = false;
  readonly #subs = new Set<Subscriber>();
  bytesIn = 0;

  /** Bytes from the pipeline, in any chunking. */
  push(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    if (!this.#header) {
      if (this.#pending.length < HEADER_LEN) return;
      this.#header = Buffer.from(this.#pending.subarray(0, HEADER_LEN));
      this.#hasVideo = ((this.#header[4] ?? 0) & 1) === 1;
      this.#pending = this.#pending.subarray(HEADER_LEN);
    }
    while (this.#pending.length >= TAG_HEADER_LEN) {
      const size = this.#pending.readUIntBE(1, 3);
      const total = TAG_HEADER_LEN + size + 4;
      if (this.#pending.length < total) break;
      const bytes = Buffer.from(this.#pending.subarray(0, total));
      this.#pending = this.#pending.subarray(total);
      const timestamp = (bytes.readUIntBE(4, 3) | ((bytes[7] ?? 0) << 24)) >>> 0;
      this.#onTag({ type: bytes[0] ?? 0, timestamp, bytes });
    }
  }

  /** Starts copying to `out` (from the next keyframe). */
  subscribe(out: Writable): () => void {
    const sub: Subscriber = { out, base: null };
    this.#subs.add(sub);
    return () => {
      this.#subs.delete(sub);
    };
  }

  get subscribers(): number {
    return this.#subs.size;
  }

  #onTag(tag: Tag): void {
    const data1 = tag.bytes[TAG_HEADER_LEN] ?? 0;
    const data2 = tag.bytes[TAG_HEADER_LEN + 1] ?? 0;
    if (tag.type === TAG_SCRIPT) {
      this.#metadata ??= tag.bytes;
      return;
    }
    if (tag.type === TAG_VIDEO && (data1 & 0x0f) === 7 && data2 === 0) {
      this.#videoConfig = tag.bytes;
      this.#hasVideo = true;
      return;
    }
    if (tag.type === TAG_AUDIO && data1 >> 4 === 10 && data2 === 0) {
      this.#audioConfig = tag.bytes;
      return;
    }
    if (tag.type === TAG_VIDEO) this.#hasVideo = true;
    const keyframe = tag.type === TAG_VIDEO && data1 >> 4 === 1;
    for (const sub of this.#subs) {
      if (sub.base === null) {
        // Start on a keyframe (any audio tag when there is no video).
        if (this.#hasVideo ? !keyframe : tag.type !== TAG_AUDIO) continue;
        if (!this.#header) continue;
        sub.base = tag.timestamp;
        for (const b of [this.#header, this.#metadata, this.#videoConfig, this.#audioConfig]) if (b) this.#write(sub, b, true);
      }
      this.#write(sub, retime(tag.bytes, Math.max(0, tag.timestamp - sub.base)), false);
    }
  }

  #write(sub: Subscriber, bytes: Buffer, always: boolean): void {
    if (!always && sub.out.writableLength > MAX_BACKLOG_BYTES) return;
    if (sub.out.writable) sub.out.write(bytes);
  }
}

/** A copy of the tag with a new timestamp (config tags keep theirs: 0). */
function retime(bytes: Buffer, timestamp: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUIntBE(timestamp & 0xffffff, 4, 3);
  out[7] = (timestamp >>> 24) & 0xff;
  return out;
}
