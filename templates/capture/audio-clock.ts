/*
 * Runs in the recorded page's own world, in every frame, before the page's scripts (a classic script,
 * injected as text: no imports or exports). It moves a Web Audio page's picture to where the
 * recording needs it.
 *
 * The recording's audio keeps the time the tab's sound is heard (page-capture.ts). A picture reaches
 * the capture one to three display frames after the page drew it (measured: 26–38 ms on average per
 * recording). Chromium's <video> allows for that: it picks each frame for the time it will be on
 * screen. A page that draws for the sound being heard "now", as `getOutputTimestamp()` describes it,
 * does not, and its flashes came out 34–55 ms after their beeps.
 *
 * So `getOutputTimestamp()` here answers with the context time being rendered now (`currentTime`, at
 * `performance.now()`), and `baseLatency` and `outputLatency` read 0. A page then draws each sound
 * about one output latency ahead of hearing it: 38–42 ms on a headless machine's output device, about
 * the picture's way to the capture. A page that follows `currentTime` already does this. Measured
 * with test/web/avsync.test.ts: such pages land within the spread every page kind has from one
 * browser start to the next (±30 ms).
 *
 * Chromium's own answer moved by the latency was tried first. Its mapping of context time to
 * performance time is off by a different amount in every browser. Only AudioContext changes:
 * OfflineAudioContext has no output. The Chromium host installs this; the Electron host does not, as
 * a desktop's real output device has its own latency, which has not been measured.
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
