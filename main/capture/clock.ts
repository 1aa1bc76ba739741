import { nowUs } from '../../gst/media-transport.js';
import type { TimestampClock } from '../contracts/timing.js';

/**
 * The egress clock is this process's `performance.timeOrigin + performance.now()` in µs (nowUs). Capture
 * timestamps arrive on other clocks and are mapped onto it here:
 * - `monotonic`: the machine's CLOCK_MONOTONIC (Chromium's TimeTicks, e.g. VideoFrame.timestamp of a
 *   tab-capture frame). Node's performance.now() runs on the same clock, so the mapping is exact.
 * - `page`: a page's `performance.timeOrigin + performance.now()`. Same rate, but the page took its
 *   wall-clock origin at navigation: its offset is measured by the host (see measurePageClockOffset).
 * - `egress`: already ours (the Electron host stamps frames in this process).
 */
export type CaptureClock = TimestampClock;

let monotonicOffsetUs: number | null = null;

/** µs on CLOCK_MONOTONIC → µs on the egress clock. */
export function monotonicToEgressUs(us: number): number {
  monotonicOffsetUs ??= nowUs() - Number(process.hrtime.bigint()) / 1000;
  return us + monotonicOffsetUs;
}

export interface PageClockOffset {
  /** page − egress, µs. */
  readonly offsetUs: number;
  /** ± bound: the reading was taken somewhere in its round trip, so half of it, µs. */
  readonly uncertaintyUs: number;
}

/**
 * Offset of a page's clock from ours, from `samples` round trips of reading the page's clock: the
 * reading with the shortest round trip, assumed taken at its midpoint.
 */
export async function measurePageClockOffset(readPageClockUs: () => Promise<number>, samples = 7): Promise<PageClockOffset> {
  let best: { rtt: number; offset: number } | null = null;
  for (let i = 0; i < samples; i++) {
    const t0 = nowUs();
    const page = await readPageClockUs();
    const t1 = nowUs();
    const sample = { rtt: t1 - t0, offset: page - (t0 + t1) / 2 };
    if (!best || sample.rtt < best.rtt) best = sample;
  }
  return { offsetUs: best?.offset ?? 0, uncertaintyUs: (best?.rtt ?? 0) / 2 };
}
