import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { freePort, stopProc } from './storage.js';

/**
 * An SRT listener for tests: Debian's srt-live-transmit on a free loopback port, writing whatever a
 * caller publishes (MPEG-TS) to `outFile`, read back with ffprobe.
 */

export const SRT_LIVE_TRANSMIT = '/usr/bin/srt-live-transmit';

export function srtListenerAvailable(): boolean {
  return existsSync(SRT_LIVE_TRANSMIT);
}

export interface SrtListener {
  readonly port: number;
  /** `srt://127.0.0.1:<port>` */
  readonly url: string;
  readonly outFile: string;
  stop(): Promise<void>;
}

export async function startSrtListener(outFile: string): Promise<SrtListener> {
  const port = await freePort();
  const fd = openSync(outFile, 'w');
  const proc: ChildProcess = spawn(SRT_LIVE_TRANSMIT, ['-q', `srt://127.0.0.1:${port}?mode=listener`, 'file://con'], { stdio: ['ignore', fd, 'ignore'] });
  closeSync(fd);
  // srt-live-transmit binds at once; give it a moment (UDP: nothing to connect to for a probe).
  await new Promise((r) => setTimeout(r, 300));
  if (proc.exitCode !== null) throw new Error(`srt-live-transmit exited with ${proc.exitCode}`);
  return {
    port,
    url: `srt://127.0.0.1:${port}`,
    outFile,
    stop: () => stopProc(proc),
  };
}
