/**
 * A level meter on the PCM that reaches the transport (interleaved float32 LE): peak and RMS of the
 * newest chunks, for the booth's audio meter. It only reads the samples, never changes them.
 */

export interface AudioLevel {
  /** Highest absolute sample value (0..1, may exceed 1 on clipping) over the last window. */
  readonly peak: number;
  /** Root mean square over the last window (0..1). */
  readonly rms: number;
  /** Capture time of the newest chunk measured (µs, egress clock). */
  readonly atUs: number;
}

/** The window the level covers: about one meter refresh. */
const WINDOW_US = 250_000;

export class AudioLevelMeter {
  #peak = 0;
  #sumSq = 0;
  #count = 0;
  #windowStartUs = -Infinity;
  #last: AudioLevel = { peak: 0, rms: 0, atUs: 0 };

  /** Measures one chunk. Every 4th sample is enough for a meter and keeps this cheap. */
  feed(data: Buffer, ptsUs: number): void {
    if (ptsUs - this.#windowStartUs >= WINDOW_US) {
      if (this.#count > 0) this.#last = { peak: this.#peak, rms: Math.sqrt(this.#sumSq / this.#count), atUs: ptsUs };
      this.#peak = 0;
      this.#sumSq = 0;
      this.#count = 0;
      this.#windowStartUs = ptsUs;
    }
    const n = Math.floor(data.length / 4);
    for (let i = 0; i < n; i += 4) {
      const v = data.readFloatLE(i * 4);
      const a = v < 0 ? -v : v;
      if (a > this.#peak) this.#peak = a;
      this.#sumSq += v * v;
      this.#count++;
    }
  }

  /** The level of the last complete window. */
  get level(): AudioLevel {
    return this.#last;
  }
}
