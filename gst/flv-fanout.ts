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

/**
 * While the recording is paused the pipeline produces nothing, and a live viewer whose stream goes
 * silent times out. The fan-out then keeps the stream alive with the last frame: the last video
 * keyframe repeated every FILL_VIDEO_MS and AAC silence, with timestamps that follow the wall clock;
 * after the resume, the pipeline's tags (whose timestamps continue where they stopped) are shifted
 * by the time filled, so the stream's timeline goes on without a jump. Filling starts once the
 * pipeline has been quiet for FILL_AFTER_MS (what was encoded before the pause still drains first).
 */
const FILL_VIDEO_MS = 200;
const FILL_AFTER_MS = 300;
const FILL_TICK_MS = 100;
/** Raw AAC-LC frames (1024 samples) of digital silence, for a mono and a stereo configuration. */
const AAC_SILENCE: Readonly<Record<number, Buffer>> = { 1: Buffer.from('01182007', 'hex'), 2: Buffer.from('211004608c1c', 'hex') };
const AAC_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

export class FlvFanout {
  #pending: Buffer = Buffer.alloc(0);
  #header: Buffer | null = null;
  #metadata: Buffer | null = null;
  #videoConfig: Buffer | null = null;
  #audioConfig: Buffer | null = null;
  #hasVideo = false;
  readonly #subs = new Set<Subscriber>();
  bytesIn = 0;
  /** Added to every pipeline timestamp: the time filled during pauses (ms). */
  #shiftMs = 0;
  /** Highest timestamp sent so far (after the shift). */
  #lastOutMs = 0;
  #lastAudioOutMs: number | null = null;
  #lastKeyframe: Buffer | null = null;
  #lastRealAt = 0;
  #paused = false;
  #fillTimer: NodeJS.Timeout | null = null;
  /** While filling: where the fill started (timestamp, wall clock) and how far it got. */
  #fill: { startOutMs: number; startWall: number; videoMs: number; audioMs: number } | null = null;
  /** Tags sent while paused (keyframe copies, silence frames). */
  filledVideoTags = 0;
  filledAudioTags = 0;

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
    if (keyframe) this.#lastKeyframe = tag.bytes;
    this.#lastRealAt = Date.now();
    if (this.#fill) {
      // The first tag after a filled pause follows the last filled one.
      this.#shiftMs = Math.max(this.#shiftMs, this.#lastOutMs + 20 - tag.timestamp);
      this.#fill = null;
    }
    this.#forward(tag.type, keyframe, tag.bytes, tag.timestamp + this.#shiftMs);
  }

  /** Sends one tag at timestamp `outMs` to every subscriber (each starts on a keyframe). */
  #forward(type: number, keyframe: boolean, bytes: Buffer, outMs: number): void {
    this.#lastOutMs = Math.max(this.#lastOutMs, outMs);
    if (type === TAG_AUDIO) this.#lastAudioOutMs = outMs;
    for (const sub of this.#subs) {
      if (sub.base === null) {
        // Start on a keyframe (any audio tag when there is no video).
        if (this.#hasVideo ? !keyframe : type !== TAG_AUDIO) continue;
        if (!this.#header) continue;
        sub.base = outMs;
        for (const b of [this.#header, this.#metadata, this.#videoConfig, this.#audioConfig]) if (b) this.#write(sub, b, true);
      }
      this.#write(sub, retime(bytes, Math.max(0, outMs - sub.base)), false);
    }
  }

  /** The recording paused (true) or resumed (false): keep the stream alive meanwhile (see FILL_VIDEO_MS). */
  setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (paused) {
      this.#fillTimer = setInterval(() => this.#fillUntilNow(), FILL_TICK_MS);
      this.#fillTimer.unref();
    } else if (this.#fillTimer) {
      clearInterval(this.#fillTimer);
      this.#fillTimer = null;
    }
  }

  #fillUntilNow(): void {
    const now = Date.now();
    if (!this.#fill) {
      if (now - this.#lastRealAt < FILL_AFTER_MS || this.#lastOutMs === 0) return;
      const audio = this.#lastAudioOutMs ?? this.#lastOutMs;
      this.#fill = { startOutMs: this.#lastOutMs, startWall: now, videoMs: this.#lastOutMs, audioMs: audio };
    }
    const f = this.#fill;
    const target = f.startOutMs + (now - f.startWall);
    const keyframe = this.#lastKeyframe;
    if (keyframe) {
      // a copy of the last keyframe, presented at its decode time (composition offset 0)
      const copy = Buffer.from(keyframe);
      if ((copy[TAG_HEADER_LEN + 1] ?? 0) === 1) copy.writeUIntBE(0, TAG_HEADER_LEN + 2, 3);
      while (f.videoMs + FILL_VIDEO_MS <= target) {
        f.videoMs += FILL_VIDEO_MS;
        this.#forward(TAG_VIDEO, true, copy, f.videoMs);
        this.filledVideoTags++;
      }
    }
    const silence = this.#silenceTag();
    if (silence) {
      while (f.audioMs + silence.frameMs <= target) {
        f.audioMs += silence.frameMs;
        this.#forward(TAG_AUDIO, false, silence.bytes, Math.round(f.audioMs));
        this.filledAudioTags++;
      }
    }
  }

  #silence: { bytes: Buffer; frameMs: number } | null | undefined;

  /** An FLV audio tag holding one AAC frame of silence for the stream's audio configuration. */
  #silenceTag(): { bytes: Buffer; frameMs: number } | null {
    if (this.#silence !== undefined) return this.#silence;
    const cfg = this.#audioConfig;
    if (!cfg) return null;
    // AudioSpecificConfig: 5 bits object type, 4 bits sampling frequency index, 4 bits channels
    const asc = cfg.readUInt16BE(TAG_HEADER_LEN + 2);
    const objectType = asc >> 11;
    const rate = AAC_SAMPLE_RATES[(asc >> 7) & 0x0f];
    const frame = AAC_SILENCE[(asc >> 3) & 0x0f];
    if (objectType !== 2 || !rate || !frame) return (this.#silence = null);
    const dataLen = 2 + frame.length;
    const bytes = Buffer.alloc(TAG_HEADER_LEN + dataLen + 4);
    bytes[0] = TAG_AUDIO;
    bytes.writeUIntBE(dataLen, 1, 3);
    bytes[TAG_HEADER_LEN] = cfg[TAG_HEADER_LEN] ?? 0xaf; // same sound format flags as the stream
    bytes[TAG_HEADER_LEN + 1] = 1; // AAC raw
    frame.copy(bytes, TAG_HEADER_LEN + 2);
    bytes.writeUInt32BE(TAG_HEADER_LEN + dataLen, TAG_HEADER_LEN + dataLen);
    return (this.#silence = { bytes, frameMs: (1024 * 1000) / rate });
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
