import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import type { StreamOutputPlan, StreamUrlPlan } from '../contracts/pipeline.js';
import { FlvFanout } from '../../gst/flv-fanout.js';
import { TsFanout } from '../../gst/ts-fanout.js';
import { buildRtmpPublisherArgs, buildSrtPublisherArgs } from '../../gst/output-pipeline.js';
import { logger } from '../log.js';
import { redactQueryValues } from '../request/urls.js';

const log = logger('stream');

/** How long a publisher may take to connect and publish before its URL counts as failed. */
const CONNECT_TIMEOUT_MS = 15_000;

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
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/**
 * The RTMP stream output of one egress (reference §2.4, §5.4, §5.5): the pipeline's FLV stream is
 * copied to one publisher process per URL (gst-launch, remux only, rtmp2sink), so a URL added by
 * UpdateStream joins at the next keyframe without touching the encoder, a removed one ends alone,
 * and a URL that fails (refused, rejected, dropped) is FAILED without affecting the recording or
 * the other URLs. Only the redacted URL is ever logged or reported.
 */
export class StreamOutput extends EventEmitter<StreamOutputEvents> {
  readonly #fanout: FlvFanout | TsFanout;
  readonly #dests: Destination[] = [];
  #ended = false;

  constructor(
    readonly plan: StreamOutputPlan,
    private readonly egressId: string,
    /** StreamInfo list of the EgressInfo (one entry per URL ever added, kept after it ends). */
    private readonly results: StreamInfo[],
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

  /** Starts the URLs of the request. */
  start(): void {
    for (const url of this.plan.urls) this.add(url);
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
    const dest: Destination = { url, logUrl, info, child: null, unsubscribe: null, stopping: false };
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
    const waits = this.#dests.filter((d) => d.info.status === StreamInfo_Status.ACTIVE).map((d) => this.#finishDest(d));
    await Promise.all(waits);
  }

  #finishDest(dest: Destination): Promise<void> {
    dest.stopping = true;
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
    const args = this.plan.protocol === 'srt' ? buildSrtPublisherArgs(dest.url.url) : buildRtmpPublisherArgs(dest.url.url);
    const child = spawn('gst-launch-1.0', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    dest.child = child;
    child.stdin.on('error', () => undefined);
    let error = '';
    let playing = false;
    const connectTimer = setTimeout(() => {
      if (!playing) this.#failDest(dest, 'stream connection timed out');
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
      if (dest.stopping) return;
      this.#end(dest, StreamInfo_Status.FAILED, error || `publisher exited (${signal ?? `code ${code}`})`);
    });
    dest.unsubscribe = this.#fanout.subscribe(child.stdin);
  }

  #failDest(dest: Destination, error: string): void {
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
