import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import { AUDIO_FD, STREAM_FD, VIDEO_FD } from './output-pipeline.js';

/**
 * Owns one `gst-launch-1.0` child process: readiness handshake with a deadline, line-by-line log
 * parsing, staged stop (EOS by closing the inputs → wait → SIGINT → SIGTERM → SIGKILL to the process
 * group) and a clear distinction between "we stopped it" and "it died".
 */

export type GstState = 'starting' | 'ready' | 'playing' | 'stopping' | 'exited';

export interface GstProcessEvents {
  /** The pipeline reached PLAYING: media is flowing into the outputs. */
  playing: [];
  /** The process ended without being asked to (crash, kill, pipeline error). Emitted once. */
  died: [GstExitInfo];
  /** The OS process is gone (after `died` or after a requested stop). */
  exit: [GstExitInfo];
  log: [string];
}

export interface GstExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** First `ERROR:` line gst-launch printed, if any. */
  readonly error: string | null;
  readonly lastLines: readonly string[];
}

export class GstLaunchError extends Error {
  constructor(
    message: string,
    readonly info?: GstExitInfo,
  ) {
    super(message);
    this.name = 'GstLaunchError';
  }
}

export class PipelineFrozenError extends Error {
  constructor() {
    super('pipeline frozen');
    this.name = 'PipelineFrozenError';
  }
}

export interface GstStartOptions {
  readonly args: readonly string[];
  readonly video: boolean;
  readonly audio: boolean;
  /** Read the muxed live stream from STREAM_FD (see StreamSinkPlan). */
  readonly streamOut?: boolean;
  /** Deadline for the readiness handshake (default LAUNCH_TIMEOUT_MS). */
  readonly launchTimeoutMs?: number;
  readonly gstLaunchPath?: string;
  readonly env?: NodeJS.ProcessEnv;
}

const MAX_LOG_LINES = 50;

/**
 * How long gst-launch has to preroll. Usually well under a second, but the first run on a machine
 * (or after a plugin update) rebuilds GStreamer's plugin registry first: 26 s measured with a cold
 * disk cache. A pipeline that has not prerolled in a minute is stuck, not slow.
 */
const LAUNCH_TIMEOUT_MS = 60_000;

/**
 * How long every output must have said it finished, with the process still running, before stop()
 * ends the process. GStreamer 1.22 sometimes never posts EOS when the stop falls just after an HLS
 * segment cut (splitmuxsink restarts its muxer and sink there): every element has finished its EOS
 * and gst-launch waits for ever. Seen on a loaded machine in 5 of 30 stops falling within a second
 * after a cut.
 */
const OUTPUTS_FINISHED_GRACE_MS = 2000;

/** CPU time (clock ticks, all threads) of a live process, from /proc; null where unknown. */
function cpuTicks(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

export interface StopOptions {
  /**
   * True once the outputs have finished their EOS, by evidence outside gst-launch's own EOS (an HLS
   * output's last fragment closed after the inputs ended): when that holds and the process uses no
   * CPU for OUTPUTS_FINISHED_GRACE_MS (nothing is still finalising), it is ended then rather than
   * failed at the EOS timeout, and stop() resolves with its exit.
   */
  readonly outputsFinished?: () => boolean;
}

export class GstProcess extends EventEmitter<GstProcessEvents> {
  /** The muxed live stream (STREAM_FD), when asked for. */
  streamOutput: Readable | null = null;
  #state: GstState = 'starting';
  #stopRequested = false;
  #error: string | null = null;
  readonly #lines: string[] = [];
  #exitInfo: GstExitInfo | null = null;
  #outputsFinishedStop = false;
  readonly #exited: Promise<GstExitInfo>;

  private constructor(
    private readonly child: ChildProcess,
    readonly videoInput: Writable | null,
    readonly audioInput: Writable | null,
  ) {
    super();
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const info: GstExitInfo = { code, signal, error: this.#error, lastLines: [...this.#lines] };
        this.#exitInfo = info;
        const wasStopping = this.#stopRequested;
        this.#state = 'exited';
        if (!wasStopping || code !== 0) {
          if (!wasStopping) this.emit('died', info);
        }
        this.emit('exit', info);
        resolve(info);
      });
    });
    child.once('error', (err) => {
      // A spawn failure (e.g. gst-launch-1.0 missing) may never emit 'exit'.
      this.#error ??= err.message;
      if (child.pid === undefined) child.emit('exit', null, null);
    });
    for (const input of [videoInput, audioInput]) {
      // EPIPE after the process died is expected; the exit handler reports the cause.
      input?.on('error', () => undefined);
    }
  }

  /** Spawns the pipeline and resolves once gst-launch has built it and started prerolling. */
  static async start(opts: GstStartOptions): Promise<GstProcess> {
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore'];
    if (opts.video) stdio[VIDEO_FD] = 'pipe';
    if (opts.audio) stdio[AUDIO_FD] = 'pipe';
    if (opts.streamOut) stdio[STREAM_FD] = 'pipe';
    const child = spawn(opts.gstLaunchPath ?? 'gst-launch-1.0', [...opts.args], {
      stdio,
      // Own process group, so a stop or kill reaches every thread/child of the pipeline.
      detached: true,
      env: opts.env ?? process.env,
    });
    const video = opts.video ? (child.stdio[VIDEO_FD] as Writable) : null;
    const audio = opts.audio ? (child.stdio[AUDIO_FD] as Writable) : null;
    const gst = new GstProcess(child, video, audio);
    gst.streamOutput = opts.streamOut ? ((child.stdio as unknown as (Readable | null)[])[STREAM_FD] ?? null) : null;
    gst.#readOutput();
    await gst.#awaitReady(opts.launchTimeoutMs ?? LAUNCH_TIMEOUT_MS);
    return gst;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get state(): GstState {
    return this.#state;
  }

  /** stop() ended the process because every output had finished but EOS never completed. */
  get endedAfterOutputsFinished(): boolean {
    return this.#outputsFinishedStop;
  }

  get exitInfo(): GstExitInfo | null {
    return this.#exitInfo;
  }

  /** Resolves when the OS process is gone. */
  waitExit(): Promise<GstExitInfo> {
    return this.#exited;
  }

  /**
   * Stops in stages: close the inputs (EOS flows through and the muxers finalise), wait up to
   * `eosTimeoutMs`; then SIGINT (gst-launch -e sends EOS once more), SIGTERM, SIGKILL, each to the
   * process group with a short wait. Rejects with PipelineFrozenError when EOS did not complete in
   * time (the process is killed regardless), unless opts.outputsFinished shows the outputs ended.
   */
  async stop(eosTimeoutMs = 30_000, opts: StopOptions = {}): Promise<GstExitInfo> {
    if (this.#state === 'exited') return this.#exitInfo as GstExitInfo;
    this.#stopRequested = true;
    this.#state = 'stopping';
    this.videoInput?.end();
    this.audioInput?.end();
    const info = await this.#waitFor(eosTimeoutMs, opts.outputsFinished);
    if (info) return info;
    if (this.#outputsFinishedStop) {
      // The outputs have finished and the process is idle, yet the pipeline never posted EOS:
      // gst-launch would wait for ever (a SIGINT only makes it wait for EOS once more). Not a frozen
      // pipeline: end the process (its exit status then says it was ended).
      for (const [signal, waitMs] of [
        ['SIGTERM', 2000],
        ['SIGKILL', 5000],
      ] as const) {
        this.#signalGroup(signal);
        const gone = await this.#waitFor(waitMs);
        if (gone) return gone;
      }
    }
    for (const [signal, waitMs] of [
      ['SIGINT', 3000],
      ['SIGTERM', 2000],
      ['SIGKILL', 5000],
    ] as const) {
      this.#signalGroup(signal);
      if (await this.#waitFor(waitMs)) break;
    }
    throw new PipelineFrozenError();
  }

  /**
   * Ends the inputs like stop(), but gives EOS only `eosTimeoutMs` before killing the process group:
   * for an egress being killed (CPU, memory), whose pipeline may be what is stuck. The muxer may then
   * leave its last fragment unfinished (exit by SIGKILL says so).
   */
  async stopOrKill(eosTimeoutMs: number): Promise<GstExitInfo> {
    if (this.#state === 'exited') return this.#exitInfo as GstExitInfo;
    this.#stopRequested = true;
    this.#state = 'stopping';
    this.videoInput?.end();
    this.audioInput?.end();
    return (await this.#waitFor(eosTimeoutMs)) ?? (await this.kill());
  }

  /** Immediate kill of the process group (used when the egress is torn down after a failure). */
  async kill(): Promise<GstExitInfo> {
    this.#stopRequested = true;
    this.#signalGroup('SIGKILL');
    return this.#exited;
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || this.#state === 'exited') return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  /**
   * The exit, or null after `ms`; with `outputsFinished`, null as soon as it has held for
   * OUTPUTS_FINISHED_GRACE_MS without the process exiting.
   */
  async #waitFor(ms: number, outputsFinished?: () => boolean): Promise<GstExitInfo | null> {
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
      if (!outputsFinished) return;
      // Idle: no CPU used through the grace period (so no muxer is still finalising its file).
      let since: { atMs: number; cpu: number } | null = null;
      poll = setInterval(() => {
        const cpu = cpuTicks(this.child.pid);
        if (!outputsFinished() || cpu === null) since = null;
        else if (since === null) since = { atMs: Date.now(), cpu };
        else if (Date.now() - since.atMs >= OUTPUTS_FINISHED_GRACE_MS) {
          if (cpu - since.cpu <= 1) {
            this.#outputsFinishedStop = true;
            resolve(null);
          } else since = { atMs: Date.now(), cpu };
        }
      }, 100);
    });
    const result = await Promise.race([this.#exited, timeout]);
    clearTimeout(timer);
    clearInterval(poll);
    return result;
  }

  #readOutput(): void {
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl).trimEnd();
        pending = pending.slice(nl + 1);
        if (line) this.#onLine(line);
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > MAX_LOG_LINES) this.#lines.shift();
    this.emit('log', line);
    if (this.#error === null && /^(ERROR|WARNING: erroneous pipeline)/.test(line)) this.#error = line;
    if (line.startsWith('Pipeline is PREROLLING') || line.startsWith('Pipeline is live')) {
      if (this.#state === 'starting') this.#state = 'ready';
      this.emit('log', '@ready');
    } else if (line.startsWith('Setting pipeline to PLAYING')) {
      if (this.#state === 'ready' || this.#state === 'starting') {
        this.#state = 'playing';
        this.emit('playing');
      }
    }
  }

  #awaitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        void this.kill();
        reject(new GstLaunchError(`gst-launch did not become ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onLog = (line: string): void => {
        if (line === '@ready') {
          cleanup();
          resolve();
        }
      };
      const onExit = (info: GstExitInfo): void => {
        cleanup();
        reject(new GstLaunchError(`gst-launch exited during start: ${info.error ?? info.lastLines.slice(-3).join(' | ')}`, info));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('log', onLog);
        this.off('exit', onExit);
      };
      if (this.#state !== 'starting') return resolve();
      this.on('log', onLog);
      this.on('exit', onExit);
    });
  }
}
