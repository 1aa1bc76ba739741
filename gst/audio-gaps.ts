import type { AudioChunkIn } from './media-transport.js';

/**
 * Keeps captured audio on its own timestamps. A page's tab audio arrives in 10 ms chunks, each
 * stamped with its capture time; when the machine is busy the browser drops whole chunks, and the
 * stamps of the chunks that follow jump ahead by the time lost (measured: 10 to 100 ms gaps, several
 * per 20 s under load). Laid end to end, every such gap would pull the rest of the audio earlier —
 * GStreamer's audiorate only corrects a discontinuity once it exceeds its tolerance — and the
 * recording's A/V offset would change by the gap's length for the rest of the file. Filling each gap
 * with exactly that much silence (and trimming an overlap) keeps every sample where it was captured.
 */

/** Below this a difference is rounding of the stamps, not lost audio. */
const GAP_TOLERANCE_US = 1000;
/** Past this a gap is not filled here (a stalled page): audiorate fills it downstream. */
const MAX_FILL_US = 5_000_000;

export class AudioGapFiller {
  #endUs: number | null = null;

  constructor(private readonly push: (chunk: AudioChunkIn) => void) {}

  /** Passes `chunk` on, after silence for any gap before it, or without a part that overlaps. */
  write(chunk: AudioChunkIn): void {
    const bytesPerFrame = 4 * chunk.channels;
    let { ptsUs, data } = chunk;
    const end = this.#endUs;
    if (end !== null) {
      const gapUs = ptsUs - end;
      if (gapUs > GAP_TOLERANCE_US && gapUs <= MAX_FILL_US) {
        const frames = Math.round((gapUs * chunk.sampleRate) / 1e6);
        this.push({ ptsUs: end, sampleRate: chunk.sampleRate, channels: chunk.channels, data: Buffer.alloc(frames * bytesPerFrame) });
      } else if (gapUs < -GAP_TOLERANCE_US) {
        const overlap = Math.round((-gapUs * chunk.sampleRate) / 1e6);
        if (overlap * bytesPerFrame >= data.length) return;
        data = data.subarray(overlap * bytesPerFrame);
        ptsUs = end;
      }
    }
    this.#endUs = ptsUs + ((data.length / bytesPerFrame) * 1e6) / chunk.sampleRate;
    this.push(data === chunk.data ? chunk : { ...chunk, ptsUs, data });
  }
}
