import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import type { StreamOutputPlan, StreamUrlPlan } from '../contracts/pipeline.js';
import { FlvFanout } from '../../gst/flv-fanout.js';
import { TsFanout } from '../../gst/ts-fanout.js';
import { buildRtmpPublisherArgs, buildSrtPublisherArgs } from '../../gst/output-pipeline.js';
import { logger } from '../log.js';
import { redactQueryValues } from '../request/urls.js';

const log = logger('stream');
const execFileAsync = promisify(execFile);

/** How long a publisher may take to connect and publish before that attempt counts as failed. */
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * Reconnect and liveness rules of the original: an RTMP publisher that errors
 * is restarted unless it never made progress on its first attempt (bad URL or key: fail fast), or
 * the outage has lasted more than 30 s (counted from the last progress seen before the first
 * error), or the liveness check failed. The liveness check fails a URL that, after having sent
 * data, has made no more than 4 KiB of progress (bytes the server's application took, see
 * tcpReadProgress) for 30 s — whether its publisher is still writing into a full socket, was
 * restarted, or is waiting to retry. The original polls every 5 s and counts bytes written to the
 * socket, which go on growing while both socket buffers fill, and the retries after its sink's I/O
 * timeouts pushed the failure later still (~40 s here before). Here the probe runs every 2 s, the
 * last progress is dated from the pace the URL was moving at (not at the probe that saw it), and a
 * probe is due exactly when a URL's idle window ends: a URL is FAILED 30 s after the server's kernel
 * took its last byte (its receive buffer filling after the application stopped reading comes
 * before that: from a fraction of a second to ~17 s measured on loopback at 3 Mbps).
 */
export interface StreamRobustness {
  readonly reconnectWindowMs: number;
  readonly livenessPollMs: number;
  readonly livenessIdleMs: number;
  readonly progressBytes: number;
  /** Pause before a restart (a refused publish does not spin). */
  readonly retryDelayMs: number;
  /** Retries push an EgressInfo update at most this often. */
  readonly retryUpdateIntervalMs: number;
}

/** The process that publishes one URL: reads the muxed stream on stdin, prints gst-launch's lines. */
export type PublisherCommand = (protocol: 'rtmp' | 'srt', url: string) => { command: string; args: string[] };

/** Outbound progress of each publisher process (see tcpReadProgress); a counter that only grows while the server takes data. */
export type ProgressProbe = (pids: readonly number[]) => Promise<Map<number, number>>;

/**
 * `ss -tinp`: for every established TCP socket, bytes acknowledged by the server plus the window it
 * still offers (bytes_acked + snd_wnd: the right edge of its receive window), summed per owning
 * process. A server that stops reading still acknowledges what its kernel takes into the receive
 * buffer, but the edge stops at the latest when the buffer's free space no longer covers the window
 * (at once when the window was already at its largest), never later than bytes_acked alone; what
 * the kernel buffers after the application stopped reading cannot be told apart from reading by any
 * sender. A healthy but slow link keeps the edge moving at the link's rate. Works for RTMPS alike.
 */
export const tcpReadProgress: ProgressProbe = async (pids) => {
  const out = new Map<number, number>();
  if (pids.length === 0) return out;
  const wanted = new Set(pids);
  let text: string;
  try {
    text = (await execFileAsync('ss', ['-tinpH', 'state', 'established'], { maxBuffer: 16 << 20 })).stdout;
  } catch {
    return out;
  }
  let owners: number[] = [];
  for (const line of text.split('\n')) {
    if (/users:\(/.test(line)) {
      owners = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])).filter((p) => wanted.has(p));
      continue;
    }
    const acked = /\bbytes_acked:(\d+)/.exec(line);
    // ss leaves snd_wnd out when it is 0 (a full receive buffer)
    const wnd = Number(/\bsnd_wnd:(\d+)/.exec(line)?.[1] ?? 0);
    if (acked && owners.length > 0) for (const p of owners) out.set(p, (out.get(p) ?? 0) + Number(acked[1]) + wnd);
    owners = [];
  }
  return out;
};

const gstPublisher: PublisherCommand = (protocol, url) => ({
  command: 'gst-launch-1.0',
  args: protocol === 'srt' ? buildSrtPublisherArgs(url) : buildRtmpPublisherArgs(url),
});

export const STREAM_ROBUSTNESS: StreamRobustness = {
  reconnectWindowMs: 30_000,
  livenessPollMs: 2_000,
  livenessIdleMs: 30_000,
  progressBytes: 4096,
  retryDelayMs: 1_000,
  retryUpdateIntervalMs: 60_000,
};

export interface StreamOutputEvents {
  /** A URL's StreamInfo changed (started, failed, finished). */
  changed: [];
}

interface Destination {
  readonly url: StreamUrlPlan;
  /** What logs show: the redacted RTMP URL; an SRT URL with its query values (stream id, passphrase) hidden. */
  readonly logUrl: string;
  readonly info: StreamInfo;
  child: ChildProcess | null;
  unsubscribe: (() => void) | null;
  stopping: boolean;
  /** When the current outage began (ms): the last progress before its first error; null while healthy. */
  firstDisconnectAt: number | null;
  /** The URL has ever made outbound progress (then an error is retried, not failed at once). */
  everProgressed: boolean;
  /**
   * Progress counter of the current publisher at its last progress (null until its first probe,
   * which is only a baseline: a fresh connection's first bytes fill the server's receive window
   * even when the server never reads them), and when the URL last made progress (ms).
   */
  progressBytes: number | null;
  lastProgressAt: number;
  /** The current publisher's progress counter at its last probe, and when (ms). */
  probedBytes: number;
  probedAt: number;
  /** The last probe saw progress. */
  flowing: boolean;
  /** Pace of the progress while it flows (bytes/ms; 0 = not known yet). */
  rate: number;
  retryTimer: NodeJS.Timeout | null;
  lastRetryUpdateAt: number;
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** The error of a URL whose server stopped taking data. */
const livenessError = (rules: StreamRobustness): string => `no outbound progress for ${Math.round(rules.livenessIdleMs / 1000)}s`;

/**
 * The RTMP stream output of one egress: the pipeline's FLV stream is
 * copied to one publisher process per URL (gst-launch, remux only, rtmp2sink), so a URL added by
 * UpdateStream joins at the next keyframe without touching the encoder, a removed one ends alone,
 * and a URL that fails (refused, rejected, dropped) is FAILED without affecting the recording or
 * the other URLs. Only the redacted URL is ever logged or reported.
 */
export class StreamOutput extends EventEmitter<StreamOutputEvents> {
  readonly #fanout: FlvFanout | TsFanout;
  readonly #dests: Destination[] = [];
  #ended = false;
  #liveness: NodeJS.Timeout | null = null;

  constructor(
    readonly plan: StreamOutputPlan,
    private readonly egressId: string,
    /** StreamInfo list of the EgressInfo (one entry per URL ever added, kept after it ends). */
    private readonly results: StreamInfo[],
    private readonly rules: StreamRobustness = STREAM_ROBUSTNESS,
    private readonly publisher: PublisherCommand = gstPublisher,
    private readonly progressOf: ProgressProbe = tcpReadProgress,
  ) {
    super();
    this.#fanout = plan.protocol === 'srt' ? new TsFanout() : new FlvFanout();
  }

  /** The container the pipeline must produce for this output. */
  get format(): 'flv' | 'mpegts' {
    return this.plan.protocol === 'srt' ? 'mpegts' : 'flv';
  }

  /** The pipeline's muxed stream (STREAM_FD). */
  attach(input: Readable): void {
    input.on('data', (chunk: Buffer) => this.#fanout.push(chunk));
    input.on('error', () => undefined);
  }

  /**
   * The recording paused or resumed: an RTMP stream is kept alive with the last frame and silence
   * meanwhile (FlvFanout.setPaused), so live viewers do not time out; an SRT stream just waits.
   */
  setPaused(paused: boolean): void {
    if (this.#fanout instanceof FlvFanout) this.#fanout.setPaused(paused);
  }

  /** Starts the URLs of the request. */
  start(): void {
    for (const url of this.plan.urls) this.add(url);
    if (this.plan.protocol === 'rtmp') {
      this.#scheduleLiveness();
    }
  }

  /** Process ids of the running publishers (CPU accounting). */
  pids(): number[] {
    return this.#dests.flatMap((d) => (d.child?.pid !== undefined && d.child.exitCode === null && d.child.signalCode === null ? [d.child.pid] : []));
  }

  /** URLs currently publishing or connecting. */
  get activeCount(): number {
    return this.#dests.filter((d) => d.info.status === StreamInfo_Status.ACTIVE).length;
  }

  /** Whether `requestedUrl` (or its expansion) is one of the active URLs. */
  find(requestedUrl: string): StreamUrlPlan | null {
    return this.#dests.find((d) => d.info.status === StreamInfo_Status.ACTIVE && (d.url.requestedUrl === requestedUrl || d.url.url === requestedUrl))?.url ?? null;
  }

  /** Adds a URL: ACTIVE at once, its publisher joins the stream at the next keyframe. */
  add(url: StreamUrlPlan): void {
    if (this.#ended) return;
    const info = new StreamInfo({ url: url.redactedUrl, status: StreamInfo_Status.ACTIVE, startedAt: nowNs() });
    this.results.push(info);
    const logUrl = this.plan.protocol === 'srt' ? redactQueryValues(url.url) : url.redactedUrl;
    const dest: Destination = {
      url,
      logUrl,
      info,
      child: null,
      unsubscribe: null,
      stopping: false,
      firstDisconnectAt: null,
      everProgressed: false,
      progressBytes: null,
      lastProgressAt: Date.now(),
      probedBytes: 0,
      probedAt: 0,
      flowing: false,
      rate: 0,
      retryTimer: null,
      lastRetryUpdateAt: 0,
    };
    this.#dests.push(dest);
    this.#spawn(dest);
  }

  /** Ends a URL normally: FINISHED. Returns false when it is not active. */
  remove(requestedUrl: string): boolean {
    const dest = this.#dests.find((d) => d.info.status === StreamInfo_Status.ACTIVE && (d.url.requestedUrl === requestedUrl || d.url.url === requestedUrl));
    if (!dest) return false;
    this.#finishDest(dest);
    return true;
  }

  /** Ends every URL (egress stop): what was published is FINISHED. */
  async finish(): Promise<void> {
    this.#ended = true;
    this.setPaused(false);
    if (this.#liveness) clearTimeout(this.#liveness);
    const waits = this.#dests.filter((d) => d.info.status === StreamInfo_Status.ACTIVE).map((d) => this.#finishDest(d));
    await Promise.all(waits);
  }

  #finishDest(dest: Destination): Promise<void> {
    dest.stopping = true;
    if (dest.retryTimer) clearTimeout(dest.retryTimer);
    dest.unsubscribe?.();
    this.#end(dest, StreamInfo_Status.FINISHED, '');
    const child = dest.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    // EOS: the publisher flushes what it has and closes the RTMP session.
    child.stdin?.end();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        try {
          child.kill('SIGKILL');
        } catch {
          // gone
        }
      }, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  #end(dest: Destination, status: StreamInfo_Status, error: string): void {
    if (dest.info.status !== StreamInfo_Status.ACTIVE) return;
    const ended = nowNs();
    dest.info.status = status;
    dest.info.endedAt = ended;
    dest.info.duration = ended > dest.info.startedAt ? ended - dest.info.startedAt : 0n;
    dest.info.error = error;
    if (status === StreamInfo_Status.FAILED) log.warn(`stream ${dest.logUrl} failed: ${error} [egress:${this.egressId}]`);
    else log.info(`stream ${dest.logUrl} finished [egress:${this.egressId}]`);
    this.emit('changed');
  }

  #spawn(dest: Destination): void {
    const { command, args } = this.publisher(this.plan.protocol === 'srt' ? 'srt' : 'rtmp', dest.url.url);
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    dest.child = child;
    child.stdin.on('error', () => undefined);
    let error = '';
    let playing = false;
    dest.progressBytes = null;
    dest.flowing = false;
    const connectTimer = setTimeout(() => {
      if (playing) return;
      error ||= 'stream connection timed out';
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }, CONNECT_TIMEOUT_MS);
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = this.#scrub(dest, pending.slice(0, nl).trimEnd());
        pending = pending.slice(nl + 1);
        if (line.startsWith('ERROR:')) error ||= line.replace(/^ERROR: from element \S+: /, '');
        // srtsink only warns when its peer is unreachable or gone (and retries forever): like the
        // original, any SRT sink warning fails that URL at once.
        if (this.plan.protocol === 'srt' && /^WARNING: from element \S*GstSRTSink/.test(line)) {
          this.#failDest(dest, line.replace(/^WARNING: from element \S+: /, '').replace(/\.? Trying to reconnect$/, ''));
        }
        else if (line.startsWith('Additional debug info') || line.startsWith('ERROR')) continue;
        if (line.startsWith('Setting pipeline to PLAYING') && !playing) {
          playing = true;
          clearTimeout(connectTimer);
          log.info(`stream ${dest.logUrl} connecting [egress:${this.egressId}]`);
        }
        if (line) log.debug(`publisher ${dest.logUrl}: ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      error ||= err.message;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(connectTimer);
      dest.unsubscribe?.();
      if (dest.stopping || dest.child !== child) return;
      this.#onPublisherDown(dest, error || `publisher exited (${signal ?? `code ${code}`})`);
    });
    dest.unsubscribe = this.#fanout.subscribe(child.stdin);
  }

  /**
   * A publisher ended on its own. SRT and a first attempt that never made progress fail at once;
   * otherwise the publisher is restarted (joining at the next keyframe) until the outage has lasted
   * longer than the reconnect window.
   */
  #onPublisherDown(dest: Destination, error: string): void {
    const now = Date.now();
    if (this.plan.protocol !== 'rtmp' || this.#ended) return this.#failDest(dest, error);
    if (dest.firstDisconnectAt === null && !dest.everProgressed) return this.#failDest(dest, error);
    // The outage began when the server last took data (last observed progress), not when the
    // publisher noticed: a server that stopped reading is only noticed once the socket buffers are
    // full and rtmp2sink's I/O timeout fires, tens of seconds later.
    dest.firstDisconnectAt ??= Math.min(now, dest.lastProgressAt);
    if (now - dest.firstDisconnectAt > this.rules.reconnectWindowMs) {
      // A reconnection timing out at the end of the window to a server that stopped taking data is
      // the liveness failure that was due at the same moment: report it as such, whichever of the two
      // noticed first.
      const idle = dest.everProgressed && now - dest.lastProgressAt >= this.rules.livenessIdleMs && /timed out/i.test(error);
      return this.#failDest(dest, idle ? livenessError(this.rules) : error);
    }
    dest.info.retries += 1;
    dest.info.lastRetryAt = nowNs();
    log.warn(`stream ${dest.logUrl} disconnected (${error}), retry ${dest.info.retries} [egress:${this.egressId}]`);
    if (now - dest.lastRetryUpdateAt >= this.rules.retryUpdateIntervalMs) {
      dest.lastRetryUpdateAt = now;
      this.emit('changed');
    }
    dest.retryTimer = setTimeout(() => {
      dest.retryTimer = null;
      if (!dest.stopping && !this.#ended) this.#spawn(dest);
    }, this.rules.retryDelayMs);
  }

  /**
   * Outbound progress of each RTMP URL (see tcpReadProgress). A URL that made progress once and has
   * made none for the idle window fails, also while its publisher is restarting or waiting to
   * retry (each new connection starts from a fresh baseline, so reconnecting to a server that does
   * not read is no progress).
   */
  #checkLiveness(): void {
    const watched = this.#dests.filter((d) => !d.stopping && d.info.status === StreamInfo_Status.ACTIVE);
    const running = (d: Destination): boolean => d.child?.pid !== undefined && d.child.exitCode === null && d.child.signalCode === null;
    void this.progressOf(watched.filter(running).map((d) => d.child?.pid as number))
      .then((progress) => {
        const now = Date.now();
        for (const dest of watched) {
          if (dest.stopping || dest.info.status !== StreamInfo_Status.ACTIVE) continue;
          const pid = dest.child?.pid;
          const value = running(dest) && pid !== undefined ? progress.get(pid) : undefined;
          if (value !== undefined) this.#onProbe(dest, value, now);
          else dest.flowing = false;
          if (dest.everProgressed && !dest.flowing && now - dest.lastProgressAt >= this.rules.livenessIdleMs) {
            this.#failDest(dest, livenessError(this.rules));
          }
        }
      })
      .catch(() => undefined)
      .finally(() => this.#scheduleLiveness());
  }

  /**
   * One probe of a URL's publisher. Progress sets when the URL last moved: a probe only tells that it
   * moved since the previous one, so the moment is estimated from the pace it had been moving at —
   * the last bytes before a server stopped reading are then dated near the stop, not at the probe.
   */
  #onProbe(dest: Destination, value: number, now: number): void {
    if (dest.progressBytes === null) {
      dest.progressBytes = value;
    } else if (value - dest.progressBytes > this.rules.progressBytes) {
      const delta = value - dest.probedBytes;
      const dt = now - dest.probedAt;
      dest.lastProgressAt = dest.flowing && dest.rate > 0 ? Math.min(now, dest.probedAt + delta / dest.rate) : now;
      // the pace follows a faster stream at once and a slowing one gradually
      if (dest.flowing && dt > 0) dest.rate = Math.max(delta / dt, dest.rate * 0.8);
      dest.progressBytes = value;
      dest.everProgressed = true;
      dest.flowing = true;
      // Media flows again: any outage is over.
      dest.firstDisconnectAt = null;
    } else dest.flowing = false;
    dest.probedBytes = value;
    dest.probedAt = now;
  }

  /** Next probe: one poll period on, or sooner when a URL's idle window ends before that. */
  #scheduleLiveness(): void {
    if (this.#ended) return;
    const now = Date.now();
    let next = this.rules.livenessPollMs;
    for (const d of this.#dests) {
      if (d.stopping || d.info.status !== StreamInfo_Status.ACTIVE || !d.everProgressed || d.flowing) continue;
      next = Math.min(next, d.lastProgressAt + this.rules.livenessIdleMs - now);
    }
    this.#liveness = setTimeout(() => this.#checkLiveness(), Math.max(50, next));
    this.#liveness.unref();
  }

  #failDest(dest: Destination, error: string): void {
    if (dest.retryTimer) clearTimeout(dest.retryTimer);
    dest.stopping = true;
    dest.unsubscribe?.();
    this.#end(dest, StreamInfo_Status.FAILED, error);
    try {
      dest.child?.kill('SIGKILL');
    } catch {
      // gone
    }
  }

  /** Never let a stream key reach a log line or an error text. */
  #scrub(dest: Destination, text: string): string {
    let out = text.split(dest.url.url).join(dest.logUrl);
    if (dest.url.streamKey.length > 0) out = out.split(dest.url.streamKey).join('{redacted}');
    return out;
  }
}
