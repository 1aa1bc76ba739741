/**
 * The handler process: one per egress, forked by the worker (`HandlerProcess`). It receives the
 * validated rpc.StartEgressRequest and the service config over IPC, rebuilds the plan, runs the web
 * egress (ChromiumHost + WebEgressController) and streams EgressInfo updates back. It touches Redis
 * only if the worker goes away: it then ends its recording (FAILED `egress worker died`), delivers the
 * file and reports that final status to livekit-server itself (direct-report.ts). End reasons
 * (session limit → LIMIT_REACHED, CPU drain, kills → FAILED) are the controller's.
 */
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { parseConfig, type ServiceConfig } from '../config/index.js';
import { createEgress, type EgressController } from '../egress/create-egress.js';
import { isTerminal } from '../egress/status.js';
import { EgressError, toEgressError, type PsrpcCode } from '../contracts/errors.js';
import { StartEgressRequest } from '../rpc/messages.js';
import { logger, setLogLevel, type LogLevel } from '../log.js';
import { Registry } from 'prom-client';
import { observeUploadMetrics } from '../upload/metrics.js';
import { encodeInfo, parseWorkerMessage, type HandlerToWorker, type StopReason, type WorkerToHandler } from './ipc.js';
import { dirSize, OUTPUT_SIZE_CHECK_MS, sessionLimitMs } from './limits.js';
import { envelopeOf } from './envelope.js';
import { reportFinalDirectly } from './direct-report.js';
import type { TransportStats } from '../../gst/media-transport.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { WarmBrowser } from '../capture/warm-browser.js';
import { ChromiumHost, findChromium } from '../capture/chromium-host.js';
import type { CaptureHost, CaptureHostOptions } from '../capture/capture-host.js';
import { chromeFlagsOf } from '../egress/create-web-egress.js';

const log = logger('handler');

/** psrpc code for the HTTP-style code a kill carries (403 CPU/OOM/shutdown, 500 internal). */
function psrpcCodeOf(httpCode: number): PsrpcCode {
  return httpCode === 403 ? 'permission_denied' : httpCode === 503 ? 'unavailable' : httpCode === 412 ? 'failed_precondition' : 'internal';
}

const send = (m: HandlerToWorker): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    try {
      process.send(m, undefined, {}, () => resolve());
    } catch {
      resolve();
    }
  });

class Handler {
  private controller: EgressController | null = null;
  private finished = false;
  private timers: NodeJS.Timeout[] = [];
  private earlyStop: StopReason | null = null;
  private earlyKill: { error: string; code: number } | null = null;
  private config: ServiceConfig | null = null;
  private orphan = false;
  /** A pool handler's pre-launched browser, until a request takes it. */
  private warm: Promise<WarmBrowser | null> | null = null;
  private started = false;

  /**
   * Pool handler (browser-pool.ts): launches the browser a page egress will use and tells the worker
   * it is ready; waits for `start`. A browser that dies while idle ends this process (the pool forks
   * a replacement); so does any failure to launch it.
   */
  prewarm(msg: Extract<WorkerToHandler, { type: 'prewarm' }>): void {
    let config: ServiceConfig;
    try {
      config = parseConfig(msg.config);
    } catch (err) {
      log.error(`handler: bad prewarm message: ${toEgressError(err).message}`);
      process.exit(3);
    }
    const level = ({ debug: 'debug', info: 'info', warn: 'warn', error: 'error' } as Record<string, LogLevel>)[config.logging.level];
    if (level) setLogLevel(level);
    const launching = (async () =>
      WarmBrowser.launch({
        workDir: join(config.tmp_dir, 'browser-pool', `${process.pid}-${randomBytes(4).toString('hex')}`),
        insecure: config.insecure,
        sandbox: config.enable_chrome_sandbox,
        extraFlags: chromeFlagsOf(config),
        ...(config.chrome_path ? { chromePath: config.chrome_path } : {}),
        bin: findChromium(config.chrome_path || undefined),
      }))();
    this.warm = launching.then(
      (warm) => {
        warm.on('died', () => {
          if (!this.started) void warm.close().finally(() => process.exit(1));
        });
        if (!this.started && warm.pid) void send({ type: 'warm', browserPid: warm.pid });
        return warm;
      },
      (err: unknown) => {
        log.error(`pool handler: could not launch a browser: ${toEgressError(err).message}`);
        if (!this.started) process.exit(1);
        return null;
      },
    );
  }

  /** An idle pool handler is let go (worker shutdown, or the worker went away): closes its browser and exits. */
  dispose(code: number): Promise<void> {
    this.disposing ??= (async () => {
      const warm = await this.warm;
      await warm?.close();
      process.exit(code);
    })();
    return this.disposing;
  }

  private disposing: Promise<void> | null = null;

  get idle(): boolean {
    return this.warm !== null && !this.started;
  }

  async start(msg: Extract<WorkerToHandler, { type: 'start' }>): Promise<void> {
    this.started = true;
    let config: ServiceConfig;
    let req: StartEgressRequest;
    try {
      config = parseConfig(msg.config);
      req = StartEgressRequest.fromBinary(Buffer.from(msg.request, 'base64'));
    } catch (err) {
      log.error(`handler: bad start message: ${toEgressError(err).message}`);
      process.exit(3);
    }
    this.config = config;
    const level = ({ debug: 'debug', info: 'info', warn: 'warn', error: 'error' } as Record<string, LogLevel>)[config.logging.level];
    if (level) setLogLevel(level);
    const now = new Date(msg.nowMs);
    const envelope = envelopeOf(req);
    try {
      // Relative local storage paths resolve against the worker's working directory (the original
      // uses `/`, its handler's cwd).
      // Uploads are counted on a registry of this process and each count is forwarded to the
      // worker, whose /metrics outlives this process (the original merges ended handlers' metrics).
      const registry = new Registry();
      observeUploadMetrics(registry, (observation) => void send({ type: 'uploadMetric', observation }));
      // A pool handler's browser goes to the page's host (which closes it, or launches its own when
      // the page needs other launch flags); an egress without a page closes it.
      const warm = this.warm ? await this.warm : null;
      this.warm = null;
      let warmUsed = false;
      const hostFactory = warm
        ? (o: CaptureHostOptions): CaptureHost => {
            warmUsed = true;
            return new ChromiumHost(o, warm);
          }
        : undefined;
      const { plan, controller } = await createEgress(envelope, config, { now, localBaseDir: process.cwd(), registry, ...(hostFactory ? { hostFactory } : {}) }).catch(async (err: unknown) => {
        await warm?.close();
        throw err;
      });
      if (warm && !warmUsed) void warm.close();
      this.controller = controller;
      controller.on('update', (i) => {
        if (isTerminal(i.status)) return; // the final info goes out as `finished`
        void send({ type: 'update', info: encodeInfo(i) });
      });
      await send({ type: 'ready', egressId: req.egressId });
      const limit = sessionLimitMs(plan, config);
      // Counted once the page loaded or the room was joined, like the original (its handler starts
      // the timer after building its source): a slow page load does not eat the recording's time.
      let limitArmed = false;
      if (limit > 0) {
        controller.on('sourceReady', () => {
          if (limitArmed) return;
          limitArmed = true;
          this.timers.push(setTimeout(() => this.stop('Session limit reached'), limit));
        });
      }
      const maxSize = config.session_limits.file_output_max_size;
      if (maxSize > 0) {
        this.timers.push(
          setInterval(() => {
            void dirSize(plan.tmpDir).then((size) => {
              if (size >= maxSize) this.stop('Session limit reached');
            });
          }, OUTPUT_SIZE_CHECK_MS),
        );
      }
      if (this.earlyKill) this.kill(this.earlyKill.error, this.earlyKill.code);
      else if (this.earlyStop) this.stop(this.earlyStop);
      const final = await controller.run();
      // What the capture lost is not visible in the file (videorate repeats the last frame): say it.
      const stats = 'transportStats' in controller && typeof controller.transportStats === 'function' ? (controller.transportStats() as TransportStats | null) : null;
      if (stats) log.info(`capture frames: in ${stats.videoFramesIn}, written ${stats.videoFramesWritten}, repeated ${stats.videoFramesRepeated}, dropped ${stats.videoFramesDropped} [egress:${req.egressId}]`);
      await this.finish(final);
    } catch (err) {
      // buildPipelinePlan was already run by the worker; anything here is an internal fault.
      const e = toEgressError(err);
      log.error(`handler failed: ${e.message} [egress:${req.egressId}]`);
      const failed = new EgressInfo({ egressId: req.egressId, status: EgressStatus.EGRESS_FAILED, error: e.message, errorCode: e.httpStatus || 500 });
      const t = BigInt(Date.now()) * 1_000_000n;
      failed.updatedAt = t;
      failed.endedAt = t;
      await this.finish(failed);
    }
  }

  stop(reason: StopReason): EgressInfo | null {
    const c = this.controller;
    if (!c) {
      this.earlyStop ??= reason;
      return null;
    }
    return c.stop(reason);
  }

  kill(error: string, code: number): void {
    if (!this.controller) {
      this.earlyKill = { error, code };
      return;
    }
    this.controller.kill(new EgressError('E_RESOURCE', psrpcCodeOf(code), error));
  }

  async onUpdateStream(seq: number, add: string[], remove: string[]): Promise<void> {
    const c = this.controller;
    try {
      if (!c) throw new EgressError('E_INVALID_STATE', 'failed_precondition', 'egress is not running yet');
      const info = c.updateStream(add, remove);
      await send({ type: 'streamUpdated', seq, info: encodeInfo(info) });
    } catch (err) {
      const e = toEgressError(err);
      await send({ type: 'streamUpdated', seq, error: { message: e.message, code: e.psrpcCode } });
    }
  }

  async onStopRequest(seq: number, reason: StopReason): Promise<void> {
    const info = this.stop(reason);
    if (info) await send({ type: 'stopped', seq, info: encodeInfo(info) });
  }

  private async finish(final: EgressInfo): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.orphan && this.config && !this.controller?.silentExit) await reportFinalDirectly(final, this.config);
    else await send({ type: 'finished', info: encodeInfo(final), ...(this.controller?.silentExit ? { silent: true } : {}) });
    if (process.connected) process.disconnect();
    process.exit(0);
  }

  /** The worker went away: end the recording and exit. */
  orphaned(): void {
    if (this.finished) process.exit(0);
    if (!this.started) {
      void this.dispose(0);
      return;
    }
    log.warn('handler: worker disconnected; ending the egress');
    this.orphan = true;
    if (this.controller) this.controller.kill(new EgressError('E_RESOURCE', 'internal', 'egress worker died'));
    else process.exit(1);
    setTimeout(() => process.exit(1), 60_000).unref();
  }
}

function main(): void {
  if (!process.send) {
    process.stderr.write('handler-entry must be started by the egress worker (IPC channel missing)\n');
    process.exit(2);
  }
  const h = new Handler();
  let started = false;
  process.on('message', (raw: unknown) => {
    const m = parseWorkerMessage(raw);
    if (!m) {
      log.warn('handler: dropped an invalid IPC message');
      return;
    }
    switch (m.type) {
      case 'start':
        if (started) return;
        started = true;
        void h.start(m);
        break;
      case 'stop':
        void h.onStopRequest(m.seq, m.reason);
        break;
      case 'kill':
        h.kill(m.error, m.code);
        break;
      case 'updateStream':
        void h.onUpdateStream(m.seq, m.add, m.remove);
        break;
      case 'prewarm':
        if (started || h.idle) return;
        h.prewarm(m);
        break;
    }
  });
  process.on('disconnect', () => h.orphaned());
  const onSignal = (): void => {
    if (h.idle) void h.dispose(0);
    else h.stop('Process killed');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main();
