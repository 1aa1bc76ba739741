/*
 * Runs in the recorded page's own world, in every frame, before the page's scripts (a classic script,
 * injected as text: no imports or exports). It makes the Web Audio clock tell the page the truth
 * about the recording: the recorded audio has no output latency.
 *
 * The capture's audio timeline is the time a sample is rendered, not the time a loudspeaker would
 * play it: the tab capture stamps a sample at its "heard" time and page-capture.ts takes the output
 * latency off (baseLatency + outputLatency, 42 ms on a headless machine's fake output device),
 * because that is where Chromium's own media pipelines put their pictures — a <video> and WebRTC
 * tracks are presented for that instant. A page that follows `AudioContext.currentTime` lands there
 * too. A page that does it properly, drawing for the time `getOutputTimestamp()` says is being heard,
 * came out a whole output latency late (measured: video 34–55 ms after audio).
 *
 * So here `baseLatency` and `outputLatency` read 0 and `getOutputTimestamp()` answers with the context
 * time being rendered now (`currentTime`, at `performance.now()`): every page kind then draws for the
 * instant its audio lands in the recording. (Chromium's own answer moved forward by the latency was
 * tried first: its mapping of context time to performance time is off by a different amount in every
 * browser, and the flashes landed 16 ms early in one recording, 21 ms late in the next; `currentTime`
 * gave −4 and +3.) Only AudioContext changes; OfflineAudioContext has no output.
 */
(() => {
  const g = globalThis as typeof globalThis & { __egressAudioClock?: boolean };
  if (typeof AudioContext === 'undefined' || g.__egressAudioClock) return;
  g.__egressAudioClock = true;
  const proto = AudioContext.prototype;
  const baseLatency = Object.getOwnPropertyDescriptor(proto, 'baseLatency')?.get;
  const outputLatency = Object.getOwnPropertyDescriptor(proto, 'outputLatency')?.get;
  const getOutputTimestamp = proto.getOutputTimestamp as ((this: AudioContext) => AudioTimestamp) | undefined;
  if (!baseLatency || !outputLatency || !getOutputTimestamp) return;

  // The original getters still run: a call on anything but an AudioContext throws as before.
  const zeroLatency = (get: () => unknown): PropertyDescriptor => ({
    configurable: true,
    enumerable: true,
    get(this: AudioContext): number {
      get.call(this);
      return 0;
    },
  });
  Object.defineProperty(proto, 'baseLatency', zeroLatency(baseLatency));
  Object.defineProperty(proto, 'outputLatency', zeroLatency(outputLatency));
  proto.getOutputTimestamp = function (this: AudioContext): AudioTimestamp {
    const ts = getOutputTimestamp.call(this);
    // Before the output started there is no timestamp (both 0): nothing to move.
    if (!ts.performanceTime) return ts;
    return { contextTime: this.currentTime, performanceTime: performance.now() };
  };
})();
