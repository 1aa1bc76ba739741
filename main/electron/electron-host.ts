import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { BrowserWindow, session as electronSession, type WebContents } from 'electron';
import WebSocket from 'ws';
import { errChrome, errPageLoad, errTemplate } from '../contracts/errors.js';
import { loadCaptureScript } from '../capture/chromium-host.js';
import { ERROR_DIV_EXPRESSION, isPageSignal, watchErrorDiv, type CaptureHost, type CaptureHostEvents, type CaptureHostOptions, type CaptureStartOptions, type HostTiming, type OpenOptions, audioLatencyUsOf } from '../capture/capture-host.js';
import { measurePageClockOffset, monotonicToEgressUs, type CaptureClock, type PageClockOffset } from '../capture/clock.js';
import { nowUs } from '../../gst/media-transport.js';
import { logger } from '../log.js';

/**
 * The Electron capture host (desktop booth app and appliance): an offscreen, sandboxed BrowserWindow
 * renders the page. Video comes from the offscreen `paint` event at the requested frame rate (BGRA
 * bitmaps, stamped here on the shared clock and sent to the ingest over a second connection); audio
 * comes from the shared in-page capture script, whose getDisplayMedia call is answered by our display
 * media handler with the page's own frame as the audio source. Everything after the ingest is shared
 * with the Chromium host.
 *
 * Not verified on a machine with the Electron binary (it cannot be downloaded on build machines):
 * this adapter is kept thin and type-checked against electron's own types.
 */

const log = logger('electron');
const NAVIGATION_TIMEOUT_MS = 30_000;
const ISOLATED_WORLD_ID = 1999;
const HEADER = 24;
const FORMAT_BGRA = 5;
/** Frames are stamped here, on the egress clock (see capture/clock.ts). */
const CLOCK_EGRESS = 2;

export class ElectronHost extends EventEmitter<CaptureHostEvents> implements CaptureHost {
  /** The page (audio, control; its video sender stays idle here) and this host (video). */
  readonly ingestConnections = 2;
  /** Video comes from offscreen paint events (raw BGRA), not from the page script. */
  readonly canEncodeInPage = false;
  #win: BrowserWindow | null = null;
  #videoSocket: WebSocket | null = null;
  #closing = false;

  constructor(private readonly opts: CaptureHostOptions) {
    super();
  }

  /** Page clock − egress clock, measured once the page is loaded. */
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

  pids(): number[] {
    const pid = this.#win?.webContents.getOSProcessId();
    return pid ? [pid] : [];
  }

  async open(url: string, opts: OpenOptions = {}): Promise<void> {
    const partition = `egress-${this.opts.egressId}`;
    const ses = electronSession.fromPartition(partition);
    const win = new BrowserWindow({
      show: false,
      width: this.opts.width,
      height: this.opts.height,
      useContentSize: true,
      webPreferences: {
        offscreen: true,
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        backgroundThrottling: false,
        autoplayPolicy: 'no-user-gesture-required',
        partition,
      },
    });
    this.#win = win;
    const wc = win.webContents;
    // The page's getDisplayMedia (from the capture script) gets the page itself, picture and sound.
    ses.setDisplayMediaRequestHandler((_req, callback) => callback({ video: wc.mainFrame, audio: wc.mainFrame }));
    wc.setWindowOpenHandler(() => ({ action: 'deny' }));
    wc.on('will-navigate', (e, target) => {
      if (target !== url) e.preventDefault();
    });
    wc.on('render-process-gone', (_e, d) => this.#die(errChrome(`page renderer gone: ${d.reason}`)));
    wc.on('console-message', (e) => {
      const msg = e.message;
      if (isPageSignal(msg)) this.emit('signal', msg, nowUs());
    });
    wc.setAudioMuted(false);
    await this.#load(wc, url);
    this.#pageClock = await measurePageClockOffset(async () => Number(await wc.executeJavaScript('(performance.timeOrigin + performance.now()) * 1000')));
    const errorText = (await wc.executeJavaScript(ERROR_DIV_EXPRESSION)) as string | null;
    if (typeof errorText === 'string') throw errTemplate(errorText.trim());
    if (opts.watchTemplateErrors) {
      this.#stopErrorWatch = watchErrorDiv(
        () => (wc.isDestroyed() ? Promise.resolve(null) : (wc.executeJavaScript(ERROR_DIV_EXPRESSION) as Promise<unknown>)),
        (text) => {
          if (!this.#closing) this.emit('templateError', errTemplate(text));
        },
      );
    }
  }

  #stopErrorWatch: (() => void) | null = null;

  async #load(wc: WebContents, url: string): Promise<void> {
    let status = 0;
    const onNavigate = (_e: unknown, _url: string, code: number): void => {
      status = code;
    };
    wc.on('did-navigate', onNavigate);
    try {
      await Promise.race([
        wc.loadURL(url),
        new Promise((_, reject) => setTimeout(() => reject(errPageLoad('navigation timed out', { retryable: true })), NAVIGATION_TIMEOUT_MS)),
      ]);
    } catch (err) {
      const e = err as { code?: string; errno?: number; message?: string };
      if (e.code) throw errPageLoad(`net::${e.code}`);
      throw err;
    } finally {
      wc.off('did-navigate', onNavigate);
    }
    if (status >= 400) throw errPageLoad(STATUS_CODES[status] ?? String(status));
  }

  async startCapture(opts: CaptureStartOptions): Promise<void> {
    const win = this.#win;
    if (!win) throw errChrome('window is not open');
    const wc = win.webContents;
    if (opts.video) {
      const ws = new WebSocket(opts.ingestUrl);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      this.#videoSocket = ws;
      wc.setFrameRate(this.opts.framerate);
      wc.on('paint', (_e, _dirty, image) => {
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > 16 * 1024 * 1024) return;
        const size = image.getSize();
        const bitmap = image.toBitmap();
        const header = Buffer.alloc(HEADER);
        header.writeUInt8(1, 0);
        header.writeUInt8(FORMAT_BGRA, 1);
        header.writeUInt8(CLOCK_EGRESS, 12);
        header.writeUInt32LE(size.width, 4);
        header.writeUInt32LE(size.height, 8);
        header.writeDoubleLE(nowUs(), 16);
        ws.send(Buffer.concat([header, bitmap]));
      });
      wc.startPainting();
    }
    await wc.executeJavaScriptInIsolatedWorld(ISOLATED_WORLD_ID, [{ code: loadCaptureScript() }]);
    const args = JSON.stringify({
      wsUrl: opts.ingestUrl,
      title: `egress-capture-${this.opts.egressId}`,
      video: false,
      audio: opts.audio,
      width: this.opts.width,
      height: this.opts.height,
      framerate: this.opts.framerate,
      audioAtRenderTime: opts.audioAtRenderTime === true,
    });
    const result: unknown = await wc.executeJavaScriptInIsolatedWorld(ISOLATED_WORLD_ID, [{ code: `globalThis.__egressCapture.start(${args})` }], true);
    this.#audioLatencyUs = audioLatencyUsOf(result);
    log.info(`capture started ${String(result)} [egress:${this.opts.egressId}]`);
  }

  async stopCapture(): Promise<void> {
    const wc = this.#win?.webContents;
    this.#videoSocket?.close();
    this.#videoSocket = null;
    if (!wc || wc.isDestroyed()) return;
    wc.stopPainting();
    await wc.executeJavaScriptInIsolatedWorld(ISOLATED_WORLD_ID, [{ code: 'globalThis.__egressCapture && globalThis.__egressCapture.stop()' }]).catch(() => undefined);
  }

  async snapshot(width: number): Promise<Buffer | null> {
    const wc = this.#win?.webContents;
    if (!wc || wc.isDestroyed() || this.#closing) return null;
    const image = await wc.capturePage();
    return image.isEmpty() ? null : image.resize({ width, quality: 'good' }).toJPEG(60);
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#stopErrorWatch?.();
    this.#videoSocket?.terminate();
    const win = this.#win;
    this.#win = null;
    if (win && !win.isDestroyed()) win.destroy();
  }

  #die(err: Error): void {
    if (this.#closing) return;
    this.#closing = true;
    log.error(err.message);
    this.emit('died', err);
  }
}
