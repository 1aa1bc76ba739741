import type { Writable } from 'node:stream';

/**
 * Copies the pipeline's MPEG-TS stream to any number of subscribers that may join at any time.
 * A subscriber starts on a packet boundary at the next PAT, so its receiver finds the program
 * tables first; the muxer repeats them, and H.264 keyframes carry SPS/PPS.
 */

const PACKET = 188;
const SYNC = 0x47;

interface Subscriber {
  readonly out: Writable;
  started: boolean;
}

const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

export class TsFanout {
  #pending: Buffer = Buffer.alloc(0);
  readonly #subs = new Set<Subscriber>();

  push(chunk: Buffer): void {
    let buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    // Resynchronise on the sync byte if the stream ever slips.
    let start = 0;
    while (start < buf.length && buf[start] !== SYNC) start++;
    buf = buf.subarray(start);
    const whole = buf.length - (buf.length % PACKET);
    const packets = buf.subarray(0, whole);
    this.#pending = Buffer.from(buf.subarray(whole));
    if (packets.length === 0) return;
    for (const sub of this.#subs) {
      let from = 0;
      if (!sub.started) {
        from = -1;
        for (let i = 0; i < packets.length; i += PACKET) {
          const pid = (((packets[i + 1] ?? 0) & 0x1f) << 8) | (packets[i + 2] ?? 0);
          const unitStart = ((packets[i + 1] ?? 0) & 0x40) !== 0;
          if (pid === 0 && unitStart) {
            from = i;
            break;
          }
        }
        if (from < 0) continue;
        sub.started = true;
      }
      if (sub.out.writableLength > MAX_BACKLOG_BYTES || !sub.out.writable) continue;
      sub.out.write(from === 0 ? packets : packets.subarray(from));
    }
  }

  subscribe(out: Writable): () => void {
    const sub: Subscriber = { out, started: false };
    this.#subs.add(sub);
    return () => {
      this.#subs.delete(sub);
    };
  }
}
