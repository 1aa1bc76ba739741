/**
 * A streaming band-limited resampler for interleaved float32 PCM (windowed sinc, Blackman window),
 * for audio that leaves without GStreamer: the page's audio (Chromium captures at the rate of its
 * audio output, 44.1 kHz on many machines) going out as the WebSocket output's fixed 48 kHz.
 * Output frame n is the input signal at time n / outRate: no delay is added.
 */

/** Input frames used on each side of an output instant. */
const HALF_TAPS = 16;
/** Sub-sample phases of the precomputed kernel. */
const PHASES = 512;

export class PcmResampler {
  readonly #step: number;
  readonly #table: Float32Array;
  /** Input frames not consumed yet (interleaved); frame 0 is absolute input frame #base. */
  #buf: Float32Array;
  #base = -HALF_TAPS;
  /** Output frames made so far: the next output instant is #n × step input frames. */
  #n = 0;

  constructor(
    readonly inRate: number,
    readonly outRate: number,
    readonly channels: number,
  ) {
    this.#step = inRate / outRate;
    // Cut off below the lower Nyquist frequency (with a margin for the window's transition band).
    const fc = Math.min(1, outRate / inRate) * 0.92;
    this.#table = new Float32Array(PHASES * 2 * HALF_TAPS);
    for (let p = 0; p < PHASES; p++) {
      const frac = p / PHASES;
      for (let k = 0; k < 2 * HALF_TAPS; k++) {
        // tap k sits at input frame floor(t) - HALF_TAPS + 1 + k, i.e. at x from the output instant
        const x = k - HALF_TAPS + 1 - frac;
        const u = Math.PI * fc * x;
        const sinc = x === 0 ? 1 : Math.sin(u) / u;
        const w = 0.42 + 0.5 * Math.cos((Math.PI * x) / HALF_TAPS) + 0.08 * Math.cos((2 * Math.PI * x) / HALF_TAPS);
        this.#table[p * 2 * HALF_TAPS + k] = Math.abs(x) >= HALF_TAPS ? 0 : fc * sinc * w;
      }
    }
    // Silence before the first input frame, so the first output frame can be computed.
    this.#buf = new Float32Array(HALF_TAPS * channels);
  }

  /** Feeds input frames; returns the output frames that are now complete (interleaved). */
  push(input: Float32Array): Float32Array {
    const ch = this.channels;
    const merged = new Float32Array(this.#buf.length + input.length);
    merged.set(this.#buf);
    merged.set(input, this.#buf.length);
    const frames = merged.length / ch;
    const lastFrame = this.#base + frames - 1;
    const out: number[] = [];
    // Output instants whose every tap has arrived.
    // (the instant is computed from the count, not summed, so it never drifts)
    for (let t = this.#n * this.#step; Math.floor(t) + HALF_TAPS <= lastFrame; t = ++this.#n * this.#step) {
      const i0 = Math.floor(t);
      const phase = Math.min(PHASES - 1, Math.round((t - i0) * PHASES));
      const row = phase * 2 * HALF_TAPS;
      const first = i0 - HALF_TAPS + 1 - this.#base;
      for (let c = 0; c < ch; c++) {
        let acc = 0;
        for (let k = 0; k < 2 * HALF_TAPS; k++) acc += (merged[(first + k) * ch + c] as number) * (this.#table[row + k] as number);
        out.push(acc);
      }
    }
    // Keep what the next output instants still need.
    const keepFrom = Math.max(0, Math.floor(this.#n * this.#step) - HALF_TAPS + 1 - this.#base);
    this.#buf = merged.slice(keepFrom * ch);
    this.#base += keepFrom;
    return Float32Array.from(out);
  }

  /** The end of the input: the last output frames, computed with silence after it. */
  flush(): Float32Array {
    return this.push(new Float32Array(HALF_TAPS * this.channels));
  }
}
