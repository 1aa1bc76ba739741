import type { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { CaptureTiming } from '../contracts/timing.js';
import type { CaptureClock } from './clock.js';

/**
 * What an egress needs from a browser that renders the page: load it (with the original's timeout,
 * retries and error classification), report the page's console signals, and run the shared in-page
 * capture script towards a loopback ingest URL. Two implementations: ChromiumHost (CDP, used on
 * servers and in every test) and ElectronHost (offscreen BrowserWindow, desktop/appliance).
 */

export interface CaptureHostOptions {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Directory the host may use for its profile and scratch files (inside the egress temp dir). */
  readonly workDir: string;
  /** Egress id, used to make the capture-source title unique. */
  readonly egressId: string;
  readonly insecure: boolean;
  readonly sandbox: boolean;
  readonly extraFlags: Readonly<Record<string, string>>;
  readonly chromePath?: string;
}

/** The in-page WebCodecs encoder's settings (the in-browser encode path, see egress/video-path.ts). */
export interface PageEncodeOptions {
  /** avc1 codec string: profile and level. */
  readonly codec: string;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** bits per second */
  readonly bitrate: number;
  /** A keyframe at least every this many frames. */
  readonly keyFrameInterval: number;
}

export interface CaptureStartOptions {
  readonly ingestUrl: string;
  readonly video: boolean;
  readonly audio: boolean;
  /** Encode the video in the page and send H.264 (only when the host's canEncodeInPage). */
  readonly encode?: PageEncodeOptions;
  /**
   * The page's pictures follow its audio's render time, not the time it is heard: a page playing
   * WebRTC tracks (room templates). The capture then takes the output latency off the audio stamps.
   */
  readonly audioAtRenderTime?: boolean;
}

/**
 * What a page says through its console: START_RECORDING / END_RECORDING (the original's protocol),
 * and, from the built-in room template, ROOM_RECONNECTING / ROOM_RECONNECTED around a lost room
 * connection its client is trying to get back (the instant the room was lost, should it not come back).
 */
export const PAGE_SIGNALS = ['START_RECORDING', 'END_RECORDING', 'ROOM_SIGNAL_RECONNECTING', 'ROOM_RECONNECTING', 'ROOM_RECONNECTED'] as const;
export type PageSignal = (typeof PAGE_SIGNALS)[number];

export function isPageSignal(v: unknown): v is PageSignal {
  return typeof v === 'string' && (PAGE_SIGNALS as readonly string[]).includes(v);
}

export interface OpenOptions {
  /**
   * Keep watching the page for a `div.error` after it loaded (room templates render connection
   * errors there at any time) and report it as `templateError`. Web pages are checked once, at load.
   */
  readonly watchTemplateErrors?: boolean;
}

/** Evaluated in the page: the innerText of its `div.error`, or null. */
export const ERROR_DIV_EXPRESSION = `(() => { const e = document.querySelector('div.error'); return e ? (e.innerText || e.textContent || '') : null })()`;

/** How often a template page is checked for a `div.error` while it runs. */
export const TEMPLATE_ERROR_POLL_MS = 1000;

/**
 * Polls `evaluate` (which runs ERROR_DIV_EXPRESSION in the page) and calls `onError` once with the
 * text of the first `div.error` seen. Returns a function that stops the polling.
 */
export function watchErrorDiv(evaluate: () => Promise<unknown>, onError: (text: string) => void): () => void {
  let stopped = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    evaluate()
      .then((text) => {
        if (typeof text === 'string' && !stopped) {
          stopped = true;
          clearInterval(timer);
          onError(text.trim());
        }
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, TEMPLATE_ERROR_POLL_MS);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** What the in-page capture script's start() answers (a JSON text). */
const CaptureStartedSchema = z.object({
  ok: z.literal(true),
  width: z.number(),
  height: z.number(),
  audioLatencyMs: z.number().nonnegative().finite().optional(),
});

/** The audio output latency (µs) the capture script took off its audio timestamps; 0 if it gave none. */
export function audioLatencyUsOf(startResult: unknown): number {
  try {
    const parsed = CaptureStartedSchema.safeParse(JSON.parse(String(startResult)));
    return parsed.success ? Math.round((parsed.data.audioLatencyMs ?? 0) * 1000) : 0;
  } catch {
    return 0;
  }
}

/** The corrections a host applies to its capture's timestamps (the clocks themselves come with each frame). */
export type HostTiming = Omit<CaptureTiming, 'videoClock' | 'audioClock'>;

export interface CaptureHostEvents {
  /** A console signal from the page, with the time of the call on the egress clock (µs). */
  signal: [PageSignal, number];
  /** The browser or the page's renderer went away without being asked to. Emitted once. */
  died: [Error];
  /** A watched template page rendered a `div.error` (`template error: <text>`). Emitted once. */
  templateError: [Error];
}

export interface CaptureHost extends EventEmitter<CaptureHostEvents> {
  /** How many connections the ingest must accept for one capture (the page, plus the host itself). */
  readonly ingestConnections: number;
  /** True when startCapture honours `encode` (the page's video goes through WebCodecs). */
  readonly canEncodeInPage: boolean;
  /** Starts the browser and loads `url`; rejects with a page-load, template or Chrome EgressError. */
  open(url: string, opts?: OpenOptions): Promise<void>;
  /** Starts the in-page capture; resolves once media flows to the ingest URL. */
  startCapture(opts: CaptureStartOptions): Promise<void>;
  /** Stops the in-page capture (the ingest sees `ended` and the socket close). */
  stopCapture(): Promise<void>;
  /** Tears everything down; idempotent and never throws. */
  close(): Promise<void>;
  /**
   * A small JPEG of what the page shows now (`width` pixels wide), for a live preview; null when the
   * page is not open. Costs one compositor readback, so callers poll it at a low rate.
   */
  snapshot(width: number): Promise<Buffer | null>;
  /** Process ids owned by this host (for CPU accounting). */
  pids(): number[];
  /** Maps a capture timestamp (µs on `clock`) onto the egress clock (see clock.ts). */
  toEgressClock(us: number, clock: CaptureClock): number;
  /** The corrections toEgressClock and the capture script apply (for the manifest). */
  timing(): HostTiming;
}
