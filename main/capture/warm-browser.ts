import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errChrome } from '../contracts/errors.js';
import { logger } from '../log.js';
import type { CaptureHostOptions } from './capture-host.js';
import type { CdpConnection } from './cdp-connection.js';
import { attachPage, chromiumFlags, insecureOriginOf, killChromiumGroup, screenOf, spawnChromium, type PageSession } from './chromium-launch.js';

/**
 * A browser launched ahead of any request (the warm pool, see docs/architecture.md): the same
 * Chromium with the same flags as a capture host would launch, on about:blank and attached. A ChromiumHost adopts it for exactly one egress (it then owns and
 * closes it); until then it only waits. What depends on the request is set when it is adopted (the
 * window size) or makes it unfit (see `fits`): then the host closes it and launches its own.
 */

const log = logger('chromium');

/** The window a warm browser starts with; a host resizes it to its page's size when it adopts it. */
const WARM_WIDTH = 1280;
const WARM_HEIGHT = 720;

export interface WarmBrowserOptions {
  /** A directory of its own (profile inside); removed when the browser closes. */
  readonly workDir: string;
  readonly insecure: boolean;
  readonly sandbox: boolean;
  readonly extraFlags: Readonly<Record<string, string>>;
  readonly chromePath?: string;
  /** The Chromium binary (findChromium's answer). */
  readonly bin: string;
}

export interface WarmBrowserEvents {
  /** The idle browser went away (crash, kill): it can serve no egress. Emitted once, never after take(). */
  died: [Error];
}

/** What a host takes over from a warm browser. */
export interface AdoptedBrowser extends PageSession {
  readonly child: ChildProcess;
  readonly cdp: CdpConnection;
  readonly stderrTail: string[];
  readonly title: string;
  /** Window size minus viewport size on about:blank (the browser UI). */
  readonly uiWidth: number;
  readonly uiHeight: number;
  readonly workDir: string;
}

export class WarmBrowser extends EventEmitter<WarmBrowserEvents> {
  #adopted: AdoptedBrowser | null = null;
  #child: ChildProcess | null = null;
  #taken = false;
  #closed = false;
  #exitPromise: Promise<void> | null = null;

  private constructor(private readonly opts: WarmBrowserOptions) {
    super();
  }

  /** Launches a browser and waits until it is ready to take a page. Rejects (and cleans up) on any failure. */
  static async launch(opts: WarmBrowserOptions): Promise<WarmBrowser> {
    const warm = new WarmBrowser(opts);
    try {
      await warm.#start();
    } catch (err) {
      await warm.close();
      throw err;
    }
    return warm;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get workDir(): string {
    return this.opts.workDir;
  }

  async #start(): Promise<void> {
    const title = `egress-capture-warm-${randomBytes(6).toString('hex')}`;
    const profileDir = join(this.opts.workDir, 'chrome-profile');
    const flags = chromiumFlags({
      width: WARM_WIDTH,
      height: WARM_HEIGHT,
      title,
      profileDir,
      insecure: this.opts.insecure,
      sandbox: this.opts.sandbox,
      extraFlags: this.opts.extraFlags,
      url: 'about:blank',
    });
    let exitedEarly: Error | null = null;
    const launched = await spawnChromium(this.opts.bin, flags, profileDir, (child, tail) => {
      this.#child = child;
      this.#exitPromise = new Promise((resolve) => child.once('exit', () => resolve()));
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        const err = errChrome(signal ? `pre-launched browser killed by ${signal}` : `pre-launched browser exited with code ${code}`);
        exitedEarly ??= err;
        if (this.#taken || this.#closed) return;
        log.warn(`${err.message}; stderr (last lines): ${tail.slice(-5).join(' | ')}`);
        this.emit('died', err);
      };
      child.on('exit', onExit);
      child.on('error', (err) => {
        exitedEarly ??= errChrome(`could not start ${this.opts.bin}: ${err.message}`, err);
      });
    });
    const session = await attachPage(launched.cdp);
    const ui = (await launched.cdp.send('Runtime.evaluate', { expression: 'JSON.stringify([outerWidth - innerWidth, outerHeight - innerHeight])', returnByValue: true }, session.sessionId)) as {
      result?: { value?: string };
    };
    const [uiWidth, uiHeight] = JSON.parse(ui.result?.value ?? '[0,0]') as number[];
    this.#adopted = { ...launched, ...session, title, uiWidth: uiWidth ?? 0, uiHeight: uiHeight ?? 0, workDir: this.opts.workDir };
    if (exitedEarly) throw exitedEarly;
  }

  /**
   * Whether a host with these options may record `url` in this browser: the same browser settings,
   * a page size the warm browser's screen holds, and no launch-time flag for the page
   * (`--unsafely-treat-insecure-origin-as-secure` for a plain-http page off localhost).
   */
  fits(host: CaptureHostOptions, url: string): boolean {
    if (this.#taken || this.#closed || !this.#adopted || this.#adopted.child.exitCode !== null || this.#adopted.child.signalCode !== null) return false;
    if (host.insecure !== this.opts.insecure || host.sandbox !== this.opts.sandbox || (host.chromePath ?? '') !== (this.opts.chromePath ?? '')) return false;
    if (!sameFlags(host.extraFlags, this.opts.extraFlags)) return false;
    if (screenOf(host.width, host.height) !== screenOf(WARM_WIDTH, WARM_HEIGHT)) return false;
    try {
      return insecureOriginOf(url) === null;
    } catch {
      return false;
    }
  }

  /** Hands the browser over to a host, which owns it from now on (its exit is the host's to watch). */
  take(): AdoptedBrowser {
    if (!this.#adopted || this.#taken || this.#closed) throw errChrome('pre-launched browser is not available');
    this.#taken = true;
    return this.#adopted;
  }

  /** Kills the idle browser (its whole process group) and removes its directory; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  #closing: Promise<void> | null = null;

  async #close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    this.#adopted?.cdp.close();
    if (child?.pid) {
      killChromiumGroup(child.pid, 'SIGKILL');
      if (child.exitCode === null && child.signalCode === null) {
        await Promise.race([this.#exitPromise, new Promise((r) => setTimeout(r, 5000))]);
      }
    }
    await rm(this.opts.workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function sameFlags(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
