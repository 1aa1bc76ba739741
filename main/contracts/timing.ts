/**
 * The timing corrections a capture applied to put its video and audio on one clock, written into the
 * manifest so anyone can audit a recording's A/V alignment: which clock each stream was stamped on,
 * how a page's clock was mapped onto the egress clock (and how well that mapping is known), the
 * audio output latency taken off the audio timestamps, and the audio encoder's delay cancelled.
 */
export type TimestampClock = 'monotonic' | 'page' | 'egress';

export interface CaptureTiming {
  /** Clock the video frames were stamped on (absent: no video). */
  readonly videoClock?: TimestampClock;
  /** Clock the audio chunks were stamped on (absent: no audio). */
  readonly audioClock?: TimestampClock;
  /** page clock − egress clock, µs (0 when no page clock is used). */
  readonly pageClockOffsetUs: number;
  /** The offset is known to ± this: half the shortest round trip it was read over, µs. */
  readonly pageClockUncertaintyUs: number;
  /** The browser's audio output latency, taken off every audio timestamp, µs (0: none taken off). */
  readonly audioLatencyUs: number;
  /** The audio encoder's delay (priming samples a player plays first): audio written this much earlier, µs. */
  readonly audioEncoderDelayUs?: number;
}
