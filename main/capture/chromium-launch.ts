import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { errChrome } from '../contracts/errors.js';
import { CdpConnection } from './cdp-connection.js';

/**
 * Starting Debian's Chromium for a capture: the command line, the process with its DevTools pipe, and
 * the page session. Shared by ChromiumHost (a browser launched for its egress) and WarmBrowser (one
 * launched ahead of any request, see warm-browser.ts), so both run the very same browser.
 */

export interface ChromiumFlagOptions {
  readonly width: number;
  readonly height: number;
  /** Tab capture picks the tab with this title without a picker (see page-capture.ts). */
  readonly title: string;
  readonly profileDir: string;
  readonly insecure: boolean;
  readonly sandbox: boolean;
  readonly extraFlags: Readonly<Record<string, string>>;
  /** The page to record: decides `--unsafely-treat-insecure-origin-as-secure` (see insecureOriginOf). */
  readonly url: string;
}

/**
 * How long the browser has to answer its first DevTools call. The first reply comes once the browser
 * is up: a second or less when its files are in the page cache, but 9 s from a cold cache on a quiet
 * machine and 17 s on a fresh one (measured), more under load. A browser that has not answered in a
 * minute is stuck, not slow.
 */
const BROWSER_START_TIMEOUT_MS = 60_000;

/** Height added to the window for the browser UI above the page; the host's viewport fit corrects the remainder. */
const UI_ALLOWANCE = 143;

/** The headless screen for a page of this size (room for the window whatever its size). */
export function screenOf(width: number, height: number): string {
  return `{${Math.max(width * 2, 3840)}x${Math.max(height * 2, 2160)}}`;
}

/**
 * getDisplayMedia needs a secure context: a plain-http page other than localhost gets one through
 * `--unsafely-treat-insecure-origin-as-secure=<origin>` (the page is the one the user asked us to
 * record). Null when the page needs no such flag. A launch-time flag only: no DevTools call grants it.
 */
export function insecureOriginOf(url: string): string | null {
  const u = new URL(url);
  return u.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) ? u.origin : null;
}

export function chromiumFlags(o: ChromiumFlagOptions): string[] {
  const flags: Record<string, string | null> = {
    'headless': 'new',
    'remote-debugging-pipe': null,
    'no-first-run': null,
    'no-default-browser-check': null,
    'disable-gpu': null,
    'disable-extensions': null,
    'disable-sync': null,
    'disable-background-networking': null,
    'disable-background-timer-throttling': null,
    'disable-backgrounding-occluded-windows': null,
    'disable-renderer-backgrounding': null,
    'disable-hang-monitor': null,
    'disable-ipc-flooding-protection': null,
    'disable-popup-blocking': null,
    'disable-features': 'Translate,TranslateUI,MediaRouter,DialMediaRouteProvider',
    'force-color-profile': 'srgb',
    'hide-scrollbars': null,
    'autoplay-policy': 'no-user-gesture-required',
    'auto-select-tab-capture-source-by-title': o.title,
    'window-size': `${o.width},${o.height + UI_ALLOWANCE}`,
    'screen-info': screenOf(o.width, o.height),
    'window-position': '0,0',
    'user-data-dir': o.profileDir,
    'password-store': 'basic',
    'use-mock-keychain': null,
  };
  if (!o.sandbox) flags['no-sandbox'] = null;
  if (o.insecure) {
    flags['disable-web-security'] = null;
    flags['allow-running-insecure-content'] = null;
  }
  const origin = insecureOriginOf(o.url);
  if (origin) flags['unsafely-treat-insecure-origin-as-secure'] = origin;
  for (const [k, v] of Object.entries(o.extraFlags)) flags[k] = v === '' ? null : v;
  return [...Object.entries(flags).map(([k, v]) => (v === null ? `--${k}` : `--${k}=${v}`)), 'about:blank'];
}

export interface LaunchedChromium {
  readonly child: ChildProcess;
  readonly cdp: CdpConnection;
  /** The last lines the browser wrote to stderr (for the log when it dies). */
  readonly stderrTail: string[];
}

/**
 * Spawns the browser in its own process group (its helpers share it, so one signal reaches them all)
 * with the DevTools pipe on fds 3/4. `onChild` sees the process before anything is awaited, so an
 * exit during the start is never missed.
 */
export async function spawnChromium(bin: string, flags: string[], profileDir: string, onChild: (child: ChildProcess, stderrTail: string[]) => void): Promise<LaunchedChromium> {
  await mkdir(profileDir, { recursive: true });
  const child = spawn(bin, flags, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true });
  const stderrTail: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    for (const line of d.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    }
  });
  onChild(child, stderrTail);
  const cdp = new CdpConnection(child.stdio[3] as Writable, child.stdio[4] as Readable);
  return { child, cdp, stderrTail };
}

export interface PageSession {
  readonly sessionId: string;
  readonly frameId: string;
}

/** Attaches to the browser's page and enables what the host listens to. */
export async function attachPage(cdp: CdpConnection, onAnswered?: () => void): Promise<PageSession> {
  const { targetInfos } = (await cdp.send('Target.getTargets', {}, undefined, BROWSER_START_TIMEOUT_MS)) as { targetInfos: { targetId: string; type: string }[] };
  onAnswered?.();
  const page = targetInfos.find((t) => t.type === 'page');
  if (!page) throw errChrome('no page target');
  const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })) as { sessionId: string };
  await Promise.all([
    cdp.send('Page.enable', {}, sessionId),
    cdp.send('Runtime.enable', {}, sessionId),
    cdp.send('Network.enable', {}, sessionId),
    cdp.send('Inspector.enable', {}, sessionId),
    // Pages' CSPs must not block the capture socket or the worklet's blob module.
    cdp.send('Page.setBypassCSP', { enabled: true }, sessionId),
  ]);
  const { frameTree } = (await cdp.send('Page.getFrameTree', {}, sessionId)) as { frameTree: { frame: { id: string } } };
  return { sessionId, frameId: frameTree.frame.id };
}

/** SIGNALs a browser's whole process group (helpers included); nothing if it is gone. */
export function killChromiumGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}
