import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errChrome, errPageLoad, errTemplate, EgressError } from '../contracts/errors.js';
import { findChrome } from '../config/index.js';
import { logger } from '../log.js';
import { nowUs } from '../../gst/media-transport.js';
import type { CdpConnection, CdpEvent } from './cdp-connection.js';
import { attachPage, chromiumFlags, killChromiumGroup, spawnChromium } from './chromium-launch.js';
import type { AdoptedBrowser, WarmBrowser } from './warm-browser.js';
import { ERROR_DIV_EXPRESSION, isPageSignal, watchErrorDiv, type CaptureHost, type CaptureHostEvents, type CaptureHostOptions, type CaptureStartOptions, type HostTiming, type OpenOptions, audioLatencyUsOf } from './capture-host.js';
import { measurePageClockOffset, monotonicToEgressUs, type CaptureClock, type PageClockOffset } from './clock.js';

/**
 * Debian's Chromium, headless, driven over the DevTools protocol through a pipe. One browser per
 * egress (isolation: a crash takes only its own recording down).
 */

const log = logger('chromium');

/** The original's page-load rules. */
const NAVIGATION_TIMEOUT_MS = 30_000;
const NAVIGATION_ATTEMPTS = 3;
/** A live page stops its capture in milliseconds; one that does not answer in this time is wedged. */
const STOP_CAPTURE_TIMEOUT_MS = 3000;
/**
 * How long a started capture waits for Chromium's "sharing this tab" bar before it settles without.
 * The bar usually comes within 0.3 s, later on a cold machine; the wait ends as soon as it came and
 * the page has its size back. Settling before a late bar captured a whole recording 56 px short.
 */
const BAR_WAIT_MS = 3000;
/** How long a window resize may take to reach the page before it is asked for again. */
const RESIZE_SETTLE_MS = 300;
/** innerWidth/Height (the page's viewport) and outerWidth/Height (the window) of the page. */
interface WindowSizes {
  readonly iw: number;
  readonly ih: number;
  readonly ow: number;
  readonly oh: number;
}

const RETRYABLE_NET_ERRORS = ['net::ERR_CERT_VERIFIER_CHANGED', 'net::ERR_CONNECTION_CLOSED'];

const SCRIPTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../templates/capture');
const scripts = new Map<string, string>();

/** A compiled in-page script as injectable text (a trailing ESM `export {}` is not valid in a script). */
function loadPageScript(name: string): string {
  let text = scripts.get(name);
  if (text === undefined) {
    text = readFileSync(join(SCRIPTS_DIR, name), 'utf8')
      .replace(/^export \{\};?\s*$/m, '')
      .replace(/\/\/# sourceMappingURL=.*$/m, '');
    scripts.set(name, text);
  }
  return text;
}

/** The capture script (page-capture.ts), evaluated in an isolated world when the capture starts. */
export function loadCaptureScript(): string {
  return loadPageScript('page-capture.js');
}

/** The Web Audio clock patch (audio-clock.ts), run in the page's own world before its scripts. */
export function loadAudioClockScript(): string {
  return loadPageScript('audio-clock.js');
}

/**
 * The browser to run: `chrome_path` when set, else the first Chromium/Chrome on PATH (the same search
 * the config does when it fills `chrome_path`), else Debian's binary outside PATH.
 */
export function findChromium(explicit?: string): string {
  const found = explicit || findChrome(process.env['PATH'] ?? '') || (existsSync(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : null);
  if (found && existsSync(found)) return found;
  throw errChrome('no Chromium binary found (install the `chromium` package or set chrome_path)');
}

const DEBIAN_CHROMIUM = '/usr/lib/chromium/chromium';

export class ChromiumHost extends EventEmitter<CaptureHostEvents> implements CaptureHost {
  #child: ChildProcess | null = null;
  #cdp: CdpConnection | null = null;
  #sessionId = '';
  #frameId = '';
  #closing = false;
  #died = false;
  #closePromise: Promise<void> | null = null;
  #title: string;
  /** A pre-launched browser given at construction, until open() takes it (or closes it as unfit). */
  #warm: WarmBrowser | null;
  /** The pre-launched browser this host took over (its directory goes when the host closes). */
  #adopted: AdoptedBrowser | null = null;
  /** The page's capture script: its main connection (audio, control) and its video sender's. */
  readonly ingestConnections = 2;
  readonly canEncodeInPage = true;

  /** `warm`: a pre-launched browser to use for the page when it fits (else it is closed and a new one launched). */
  constructor(
    private readonly opts: CaptureHostOptions,
    warm?: WarmBrowser,
  ) {
    super();
    this.#warm = warm ?? null;
    this.#title = `egress-capture-${opts.egressId}`;
  }

  pids(): number[] {
    return this.#child?.pid ? [this.#child.pid] : [];
  }

  /** Page clock − egress clock (µs), measured once the page is loaded. */
  #pageClock: PageClockOffset = { offsetUs: 0, uncertaintyUs: 0 };
  #audioLatencyUs = 0;

  toEgressClock(us: number, clock: CaptureClock): number {
    if (clock === 'monotonic') return monotonicToEgressUs(us);
    if (clock === 'page') return us - this.#pageClock.offsetUs;
    return us;
  }

  timing(): HostTiming {
    return { pageClockOffsetUs: this.#pageClock.offsetUs, pageClockUncertaintyUs: this.#pageClock.uncertaintyUs, audioLatencyUs: this.#audioLatencyUs };
  }

  /**
   * When each start-up step of this host ended (wall clock, ms): launch → first CDP answer → page
   * attached → navigated → viewport fitted → opened; capture script in → capture started → capture
   * settled. bench/web-egress prints the split.
   */
  readonly startupMarks = new Map<string, number>();

  #mark(step: string): void {
    this.startupMarks.set(step, performance.timeOrigin + performance.now());
  }

  /** Each start-up mark with the milliseconds since the one before (`open 0, attached 412, …`), for the log. */
  #startupSteps(): string {
    let prev = 0;
    const steps: string[] = [];
    for (const [step, at] of this.startupMarks) {
      steps.push(`${step} ${prev ? Math.round(at - prev) : 0}`);
      prev = at;
    }
    return steps.join(', ');
  }

  /** True when this host was given a pre-launched browser and opened its page in it. */
  get warm(): boolean {
    return this.#adopted !== null;
  }

  async open(url: string, opts: OpenOptions = {}): Promise<void> {
    this.#mark('open');
    const warm = this.#warm;
    this.#warm = null;
    if (warm && warm.fits(this.opts, url)) await this.#adopt(warm);
    else {
      if (warm) {
        log.info(`pre-launched browser does not fit this page, launching a new one [egress:${this.opts.egressId}]`);
        void warm.close();
      }
      await this.#launch(url);
    }
    // Every document of the page from now on, its frames included, before their own scripts.
    await this.#requireCdp().send('Page.addScriptToEvaluateOnNewDocument', { source: loadAudioClockScript() }, this.#sessionId);
    await this.#navigate(url);
    this.#mark('navigated');
    await this.#fitViewport();
    this.#mark('fitted');
    this.#pageClock = await measurePageClockOffset(async () => Number(await this.#evaluate('(performance.timeOrigin + performance.now()) * 1000')));
    const errorText = await this.#evaluate(ERROR_DIV_EXPRESSION);
    if (typeof errorText === 'string') throw errTemplate(errorText.trim());
    if (opts.watchTemplateErrors) {
      this.#stopErrorWatch = watchErrorDiv(
        () => this.#evaluate(ERROR_DIV_EXPRESSION),
        (text) => {
          if (!this.#closing) this.emit('templateError', errTemplate(text));
        },
      );
    }
    this.#mark('opened');
  }

  /** outer − inner height of the window before the capture (browser UI without the sharing bar). */
  #uiHeight = 0;

  #stopErrorWatch: (() => void) | null = null;

  async startCapture(opts: CaptureStartOptions): Promise<void> {
    this.#mark('captureCalled');
    const cdp = this.#requireCdp();
    const { executionContextId } = (await cdp.send('Page.createIsolatedWorld', { frameId: this.#frameId, worldName: 'egress-capture', grantUniveralAccess: false }, this.#sessionId)) as {
      executionContextId: number;
    };
    await this.#evaluate(loadCaptureScript(), executionContextId);
    this.#mark('scriptLoaded');
    const args = JSON.stringify({
      wsUrl: opts.ingestUrl,
      title: this.#title,
      video: opts.video,
      audio: opts.audio,
      width: this.opts.width,
      height: this.opts.height,
      framerate: this.opts.framerate,
      ...(opts.encode ? { encode: opts.encode } : {}),
      audioAtRenderTime: opts.audioAtRenderTime === true,
    });
    const result = await this.#evaluate(`globalThis.__egressCapture.start(${args})`, executionContextId, true);
    this.#mark('captureStarted');
    this.#captureContext = executionContextId;
    this.#capturingVideo = opts.video;
    this.#audioLatencyUs = audioLatencyUsOf(result);
    // Audio only: the page's size is not recorded.
    if (opts.video) await this.#settleViewport();
    this.#mark('viewportSettled');
    if (opts.video) await this.#minimize();
    this.#mark('captureSettled');
    log.info(`capture started ${String(result)} [egress:${this.opts.egressId}]`);
    log.info(`start-up steps (ms): ${this.#startupSteps()} [egress:${this.opts.egressId}]`);
  }

  #captureContext = 0;
  #capturingVideo = false;

  async stopCapture(): Promise<void> {
    // A crashed renderer never answers: asking it would only wait for the CDP timeout.
    if (!this.#cdp || this.#cdp.closed || this.#captureContext === 0 || this.#died) return;
    try {
      await this.#evaluate('globalThis.__egressCapture && globalThis.__egressCapture.stop()', this.#captureContext, false, STOP_CAPTURE_TIMEOUT_MS);
    } catch (err) {
      log.warn(`stopCapture: ${(err as Error).message}`);
    }
  }

  async snapshot(width: number): Promise<Buffer | null> {
    if (!this.#cdp || this.#cdp.closed || this.#died || this.#closing || !this.#sessionId) return null;
    // While the page's video is captured, the preview is one of the captured frames (page-capture.ts
    // draws and encodes it): a screenshot stalls the tab's compositor, and the recording lost about
    // 100 ms of frames at every one.
    if (this.#captureContext !== 0 && this.#capturingVideo) {
      const jpeg = await this.#evaluate(`globalThis.__egressCapture.snapshot(${Math.round(width)})`, this.#captureContext, true, 5000);
      if (typeof jpeg === 'string' && jpeg !== '') return Buffer.from(jpeg, 'base64');
      // No frame captured yet: a page that has not painted since the capture started (seen once on
      // a still page). A screenshot then costs the recording nothing, and its repaint hands the
      // capture a frame for the next preview.
    }
    // Nothing captures video (not started, or audio only), or no frame yet: the browser scales and
    // JPEG-encodes a screenshot, one small readback with nothing decoded on our side.
    const scale = Math.min(1, width / this.opts.width);
    const clip = { x: 0, y: 0, width: this.opts.width, height: this.opts.height, scale };
    const res = (await this.#cdp.send('Page.captureScreenshot', { format: 'jpeg', quality: 60, clip, optimizeForSpeed: true }, this.#sessionId, 5000)) as { data?: string };
    return res.data ? Buffer.from(res.data, 'base64') : null;
  }

  close(): Promise<void> {
    this.#closePromise ??= this.#doClose();
    return this.#closePromise;
  }

  async #doClose(): Promise<void> {
    this.#closing = true;
    this.#stopErrorWatch?.();
    const child = this.#child;
    try {
      if (this.#cdp && !this.#cdp.closed) await this.#cdp.send('Browser.close', {}, undefined, 3000);
    } catch {
      // Falls through to the signals below.
    }
    this.#cdp?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const wait = (ms: number): Promise<boolean> =>
        Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
      if (!(await wait(3000))) {
        this.#killGroup('SIGTERM');
        if (!(await wait(2000))) {
          this.#killGroup('SIGKILL');
          await wait(5000);
        }
      }
    }
    // Helpers (zygote, GPU, renderers) share the process group: make sure none outlives the egress.
    this.#killGroup('SIGKILL');
    await this.#warm?.close();
    if (this.#adopted) await rm(this.#adopted.workDir, { recursive: true, force: true }).catch(() => undefined);
  }

  #killGroup(signal: NodeJS.Signals): void {
    killChromiumGroup(this.#child?.pid, signal);
  }

  async #launch(url: string): Promise<void> {
    const bin = findChromium(this.opts.chromePath);
    const profileDir = join(this.opts.workDir, 'chrome-profile');
    const flags = chromiumFlags({ ...this.opts, title: this.#title, profileDir, url });
    const { cdp } = await spawnChromium(bin, flags, profileDir, (child, stderrTail) => this.#watch(child, stderrTail, bin));
    this.#cdp = cdp;
    cdp.on('event', (ev) => this.#onEvent(ev));
    const launchedAt = Date.now();
    const session = await attachPage(cdp, () => {
      this.#mark('cdpAnswered');
      const startMs = Date.now() - launchedAt;
      if (startMs > 5_000) log.warn(`the browser took ${(startMs / 1000).toFixed(1)} s to start (cold disk cache or a loaded machine) [egress:${this.opts.egressId}]`);
    });
    this.#sessionId = session.sessionId;
    this.#frameId = session.frameId;
    this.#mark('attached');
  }

  /** Takes over a pre-launched browser: watches it as its own and sizes its window for this page. */
  async #adopt(warm: WarmBrowser): Promise<void> {
    const b = warm.take();
    this.#adopted = b;
    this.#title = b.title;
    this.#watch(b.child, b.stderrTail, 'chromium');
    this.#cdp = b.cdp;
    b.cdp.on('event', (ev) => this.#onEvent(ev));
    this.#sessionId = b.sessionId;
    this.#frameId = b.frameId;
    if (b.child.exitCode !== null || b.child.signalCode !== null) throw errChrome('pre-launched browser is gone');
    const windowId = await this.#windowId(b.cdp);
    await b.cdp.send('Browser.setWindowBounds', { windowId, bounds: { width: this.opts.width + b.uiWidth, height: this.opts.height + b.uiHeight } });
    this.#mark('attached');
    log.info(`page opens in a pre-launched browser (pid ${b.child.pid ?? '?'}) [egress:${this.opts.egressId}]`);
  }

  #watch(child: ChildProcess, stderrTail: string[], bin: string): void {
    this.#child = child;
    child.on('exit', (code, signal) => {
      if (this.#closing) return;
      log.warn(`browser stderr (last lines): ${stderrTail.slice(-5).join(' | ')}`);
      this.#die(errChrome(signal ? `browser killed by ${signal}` : `browser exited with code ${code}`));
    });
    child.on('error', (err) => this.#die(errChrome(`could not start ${bin}: ${err.message}`, err)));
  }

  #die(err: Error): void {
    if (this.#died || this.#closing) return;
    this.#died = true;
    log.error(`${err.message} [egress:${this.opts.egressId}]`);
    this.emit('died', err);
  }

  #onEvent(ev: CdpEvent): void {
    if (ev.method === 'Runtime.consoleAPICalled') {
      const args = (ev.params['args'] as { value?: unknown }[] | undefined) ?? [];
      // The call's time, in ms on the page's clock (its timeOrigin + performance.now()).
      const ts = typeof ev.params['timestamp'] === 'number' ? this.toEgressClock((ev.params['timestamp'] as number) * 1000, 'page') : nowUs();
      for (const a of args) {
        if (isPageSignal(a.value)) this.emit('signal', a.value, ts);
      }
    } else if (ev.method === 'Inspector.targetCrashed') {
      this.#die(errChrome('page renderer crashed'));
    } else if (ev.method === 'Inspector.detached') {
      this.#die(errChrome(`page detached: ${String(ev.params['reason'] ?? '')}`));
    }
  }

  #requireCdp(): CdpConnection {
    if (!this.#cdp || this.#cdp.closed) throw errChrome('browser is not running');
    return this.#cdp;
  }

  async #evaluate(expression: string, contextId?: number, awaitPromise = false, timeoutMs?: number): Promise<unknown> {
    const params: Record<string, unknown> = { expression, returnByValue: true, awaitPromise, userGesture: true };
    if (contextId) params['contextId'] = contextId;
    const res = (await this.#requireCdp().send('Runtime.evaluate', params, this.#sessionId, timeoutMs)) as {
      result?: { value?: unknown };
      exceptionDetails?: { text?: string; exception?: { description?: string } };
    };
    if (res.exceptionDetails) {
      throw errChrome(res.exceptionDetails.exception?.description ?? res.exceptionDetails.text ?? 'evaluation failed');
    }
    return res.result?.value;
  }

  async #navigate(url: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#navigateOnce(url);
        return;
      } catch (err) {
        const retryable = err instanceof EgressError && err.retryable;
        if (!retryable || attempt >= NAVIGATION_ATTEMPTS) throw err;
        log.warn(`page load attempt ${attempt} failed, retrying: ${(err as Error).message}`);
      }
    }
  }

  async #navigateOnce(url: string): Promise<void> {
    const cdp = this.#requireCdp();
    let status = 0;
    let statusText = '';
    let loaderId = '';
    const onEvent = (ev: CdpEvent): void => {
      if (ev.method === 'Network.responseReceived' && ev.params['type'] === 'Document' && ev.params['frameId'] === this.#frameId) {
        if (!loaderId || ev.params['loaderId'] === loaderId) {
          const r = ev.params['response'] as { status: number; statusText: string };
          status = r.status;
          statusText = r.statusText;
        }
      }
    };
    cdp.on('event', onEvent);
    const loaded = new Promise<void>((resolve) => {
      const onLoad = (ev: CdpEvent): void => {
        if (ev.method === 'Page.loadEventFired' && ev.sessionId === this.#sessionId) {
          cdp.off('event', onLoad);
          resolve();
        }
      };
      cdp.on('event', onLoad);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errPageLoad('navigation timed out', { retryable: true })), NAVIGATION_TIMEOUT_MS);
    });
    try {
      const nav = (await Promise.race([cdp.send('Page.navigate', { url }, this.#sessionId, NAVIGATION_TIMEOUT_MS), timeout])) as {
        loaderId?: string;
        errorText?: string;
      };
      loaderId = nav.loaderId ?? '';
      if (nav.errorText) {
        throw errPageLoad(nav.errorText, { retryable: RETRYABLE_NET_ERRORS.includes(nav.errorText) });
      }
      await Promise.race([loaded, timeout]);
      if (status >= 400) {
        const { STATUS_CODES } = await import('node:http');
        throw errPageLoad(statusText || STATUS_CODES[status] || String(status));
      }
    } finally {
      clearTimeout(timer);
      cdp.off('event', onEvent);
    }
  }

  #windowIdCached: number | null = null;

  /** The page's browser window (one per egress, for its whole life): asked for once. */
  async #windowId(cdp: CdpConnection): Promise<number> {
    this.#windowIdCached ??= ((await cdp.send('Browser.getWindowForTarget', {}, this.#sessionId)) as { windowId: number }).windowId;
    return this.#windowIdCached;
  }

  /**
   * Starting a tab capture shows a "sharing this tab" bar (usually by the time getDisplayMedia
   * answers), which takes height from the page: give it back so the page keeps the requested size
   * (no letterboxing, no resize). Polled every few ms rather than slept on: done as soon as the bar
   * is there and the page has its size again; gives up waiting for a bar after BAR_WAIT_MS.
   */
  async #settleViewport(): Promise<void> {
    const deadline = Date.now() + BAR_WAIT_MS;
    let resizedAt = 0;
    let resizedFrom = '';
    for (;;) {
      const cur = await this.#windowSizes();
      const right = cur.iw === this.opts.width && cur.ih === this.opts.height;
      if (right && cur.oh - cur.ih > this.#uiHeight) return;
      // A resize takes a moment to reach the page: re-fitting from a half-applied size would overshoot.
      const pending = resizedAt > 0 && `${cur.iw},${cur.ih}` === resizedFrom && Date.now() - resizedAt < RESIZE_SETTLE_MS;
      if (!right && !pending) {
        await this.#setViewport(cur);
        resizedAt = Date.now();
        resizedFrom = `${cur.iw},${cur.ih}`;
      }
      if (Date.now() > deadline) {
        log.warn(`no sharing bar within ${BAR_WAIT_MS} ms of the capture start; the viewport was left as it was [egress:${this.opts.egressId}]`);
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The page's viewport (inner) and the window's (outer) size. */
  async #windowSizes(): Promise<WindowSizes> {
    const size = (await this.#evaluate('JSON.stringify([innerWidth, innerHeight, outerWidth, outerHeight])')) as string;
    const [iw, ih, ow, oh] = JSON.parse(size) as number[];
    return { iw: iw ?? 0, ih: ih ?? 0, ow: ow ?? 0, oh: oh ?? 0 };
  }

  /** Sizes the window so that the page's viewport is the requested size, given the current sizes. */
  async #setViewport(cur: WindowSizes): Promise<void> {
    const cdp = this.#requireCdp();
    const windowId = await this.#windowId(cdp);
    await cdp.send('Browser.setWindowBounds', { windowId, bounds: { width: this.opts.width + (cur.ow - cur.iw), height: this.opts.height + (cur.oh - cur.ih) } });
  }

  /**
   * Takes the window off the (headless) screen once the tab is being captured. Shown, every page frame
   * is composited twice — into the tab's own render pass for the capturer and again onto the window —
   * 60 times a second; minimised, the compositor draws the tab only for the frames the capture takes.
   * bench/web-egress, 720p30 demo page: the GPU process went from ~41 to ~20 CPU-s per minute. A
   * captured tab stays "visible" to the page (document.visibilityState, requestAnimationFrame at the
   * display rate, media playback), so nothing the page does changes.
   */
  async #minimize(): Promise<void> {
    const cdp = this.#requireCdp();
    const windowId = await this.#windowId(cdp);
    await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'minimized' } });
  }

  /**
   * Makes the page's viewport exactly the requested size (the browser UI height varies). Returns
   * true when it already was.
   */
  async #fitViewport(): Promise<boolean> {
    const cur = await this.#windowSizes();
    // The browser UI above the page (a resize does not change it): the sharing bar adds to it.
    this.#uiHeight = cur.oh - cur.ih;
    if (cur.iw === this.opts.width && cur.ih === this.opts.height) return true;
    await this.#setViewport(cur);
    return false;
  }
}
