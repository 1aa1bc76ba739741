/**
 * The egress worker (`egress serve`): a drop-in egress instance for livekit-server over psrpc/Redis.
 *
 * - EgressInternal.ListActiveEgress ("" topic, multi) from construction; StartEgress on `cluster_id`
 *   with the original's affinity (−1 cannot accept / 0.5 idle / 1.0 busy) once running.
 * - StartEgress: shutting down → `server is shutting down`; duplicate id → `egress already exists`;
 *   admission → `not enough CPU`; buildPipelinePlan validation BEFORE anything is spawned; then the
 *   EgressHandler topics (StopEgress, UpdateStream on the egress id), IOInfo.CreateEgress and the
 *   handler process (ready within 30 s) in parallel; replies the STARTING info.
 * - Every status change from the handler → IOInfo.UpdateEgress (ordered, coalesced, retried).
 * - One handler process per egress: its crash fails only that egress (FAILED 500, exec error text).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { EgressInfo, EgressStatus, WebEgressRequest, type StopEgressRequest, type UpdateStreamRequest } from '@livekit/protocol';
import type { ServiceConfig } from '../config/index.js';
import { EgressError, errAlreadyExists, errInvalidInput, errNotEnoughCpu, errNotFound, errShuttingDown, toEgressError } from '../contracts/errors.js';
import type { PipelinePlan } from '../contracts/pipeline.js';
import { initialEgressInfo } from '../egress/info.js';
import { isTerminal, statusName } from '../egress/status.js';
import { logger } from '../log.js';
import { buildPipelinePlan, costOf, requestTypeOf, usesChrome, type EgressRequest, type RequestCost } from '../request/index.js';
import { ListActiveEgressResponse, type StartEgressRequest } from '../rpc/messages.js';
import { PsrpcClient, PsrpcServer, RedisBus, type Registration, type RedisBusOptions } from '../rpc/psrpc/index.js';
import { EgressHandler, EgressInternal } from '../rpc/services.js';
import { configBodyOf } from './config-body.js';
import { refreshTwitchIngests } from '../request/twitch-ingest.js';
import { envelopeOf } from './envelope.js';
import { abortedReply, HandlerProcess } from './handler-process.js';
import { recordUploadObservation } from '../upload/metrics.js';
import { IoReporter } from './io.js';
import { ServiceMetrics, type HandlerResult } from './metrics.js';
import { Monitor } from './monitor.js';
import { assertRunnable } from '../egress/capabilities.js';
import { startTemplateServer, type TemplateServer } from '../capture/template-server.js';
import type { ProcStat } from './proc.js';
import { deliverOrphanedFile, finishOrphanedPipeline, killAllButPipeline } from './orphan-file.js';
import { redisOptionsOf } from './redis.js';
import { BrowserPool, browserPoolSizeOf } from './browser-pool.js';

const log = logger('service');

/** How long finished egress ids are remembered to refuse a late duplicate StartEgress. */
const FINISHED_MEMORY_MS = 60 * 60_000;
const FINISHED_MEMORY_MAX = 10_000;

export function newNodeId(): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let id = 'NE_';
  for (const b of randomBytes(12)) id += alphabet[b % alphabet.length];
  return id;
}

export interface EgressServiceOptions {
  /** Override the Redis connection (tests); default from config.redis. */
  readonly redis?: RedisBusOptions['redis'];
  readonly handlerEntry?: string;
  readonly handlerReadyTimeoutMs?: number;
  /** Override the core count used for admission (tests). */
  readonly cores?: number;
}

interface Active {
  readonly id: string;
  readonly plan: PipelinePlan;
  readonly requestType: string;
  readonly request: EgressRequest;
  info: EgressInfo;
  handler: HandlerProcess | null;
  regs: Registration[];
  result: HandlerResult | null;
  /** Its handler was forked but the start failed (reported FAILED): retries get that answer. */
  startFailed?: boolean;
}

/**
 * Every request with a known type is claimed (affinity by cost), so that what this build cannot run
 * yet gets a clear error from StartEgress instead of livekit-server's "no response from servers".
 */
function servesRequest(req: StartEgressRequest): boolean {
  return requestTypeOf(req.request as EgressRequest) !== null;
}

/** The health JSON key of a request oneof (Go's oneof wrapper type name). */
const GO_ONEOF: Record<string, string> = {
  web: 'Web',
  roomComposite: 'RoomComposite',
  participant: 'Participant',
  trackComposite: 'TrackComposite',
  track: 'Track',
  egress: 'Egress',
  replay: 'Replay',
};

export class EgressService {
  readonly nodeId = newNodeId();
  readonly monitor: Monitor;
  readonly metrics: ServiceMetrics;
  bus!: RedisBus;
  server!: PsrpcServer;
  ioClient!: PsrpcClient;
  io!: IoReporter;
  private readonly active = new Map<string, Active>();
  /** Egress ids being admitted right now (between the claim and the reply). */
  private readonly starting = new Set<string>();
  /**
   * StartEgress answers by egress id, kept while the egress runs here: livekit-server retries a
   * StartEgress that took longer than its attempt timeout (a loaded machine) with the same payload and
   * egress id. That retry is claimed here and gets the first attempt's answer — refusing it as a
   * duplicate would fail the API call of an egress that is in fact running. A start that failed
   * after its handler was forked keeps its answer (the failure) as long as its id is remembered.
   */
  private readonly answers = new Map<string, { readonly payload: string; readonly answer: Promise<EgressInfo> }>();
  private readonly finished = new Map<string, number>();
  private startReg: Registration | null = null;
  private listReg: Registration | null = null;
  private readonly httpServers: Server[] = [];
  private shuttingDown = false;
  private terminating = false;
  private stopped = false;
  private resolveDone!: () => void;
  /** Resolves when the service has shut down completely. */
  readonly done: Promise<void>;
  private readonly configYaml: string;
  private templates: TemplateServer | null = null;
  /** Pre-forked handlers with an idle browser (browser_pool_size), null when off. */
  pool: BrowserPool | null = null;

  constructor(
    readonly config: ServiceConfig,
    private readonly opts: EgressServiceOptions = {},
  ) {
    this.monitor = new Monitor(config, opts.cores !== undefined ? { cores: opts.cores } : {});
    this.configYaml = configBodyOf(config);
    this.done = new Promise((r) => (this.resolveDone = r));
    this.metrics = new ServiceMetrics(this.nodeId, config.cluster_id, {
      isIdle: () => this.activeCount === 0 && !this.isDisabled(),
      canAcceptWeb: () => !this.isDisabled() && this.monitor.canAccept(costOf({ case: 'web', value: new WebEgressRequest() }, config), true),
      isDisabled: () => this.isDisabled(),
      isTerminating: () => this.terminating,
      hostCpuLoad: () => this.monitor.hostLoad,
      requestsByType: () => {
        const by: Record<string, number> = {};
        for (const a of this.active.values()) by[a.requestType] = (by[a.requestType] ?? 0) + 1;
        return by;
      },
      procRssBytes: () => this.monitor.usedMemoryGb().used * 1024 ** 3,
      browserPool: () => ({ ready: this.pool?.ready ?? 0, rssBytes: this.pool?.idleRssBytes() ?? 0 }),
      cgroupMemoryBytes: () => this.monitor.cgroupMemory,
      wouldRejectCgroup: () => {
        const c = this.config.cpu_cost;
        const m = this.monitor.cgroupMemory;
        return c.max_memory > 0 && m !== null && m / 1024 ** 3 + c.memory_cost + 1 >= c.max_memory;
      },
      loadRatios: () => {
        const c = this.config.cpu_cost;
        const mem = this.monitor.usedMemoryGb();
        return {
          cpu: this.monitor.usedCpu() / Math.max(1e-9, this.monitor.cores * c.max_cpu_utilization),
          memory: c.max_memory > 0 ? (mem.used + mem.pending) / c.max_memory : 0,
          pulse: this.monitor.pulseClients() / Math.max(1, c.max_pulse_clients),
        };
      },
    });
    this.monitor.on('cpu-drain', (id) => this.cpuDrain(id));
    this.monitor.on('cpu-kill', (id, cores) => this.killEgress(id, `CPU exhausted: ${cores.toFixed(2)} cores used`, 'killed_cpu'));
    this.monitor.on('oom-kill', (id, gb) => this.killEgress(id, `OOM: ${gb.toFixed(2)} GB used`, 'killed_oom'));
  }

  get activeCount(): number {
    return this.active.size + this.starting.size;
  }

  isDisabled(): boolean {
    return this.shuttingDown || !(this.io?.healthy ?? true);
  }

  /** Connects, registers ListActiveEgress then StartEgress, starts health/metrics servers. */
  async start(): Promise<void> {
    const c = this.config;
    this.checkCores();
    this.bus = await RedisBus.connect({ redis: this.opts.redis ?? redisOptionsOf(c), connectTimeoutMs: 15_000 });
    this.server = new PsrpcServer(this.bus);
    this.ioClient = new PsrpcClient(this.bus, {
      timeoutMs: c.io_update_timeout,
      // io_selection_timeout 0 = psrpc default; a short window with retries.
      selectionTimeoutMs: c.io_selection_timeout > 0 ? c.io_selection_timeout : 2000,
    });
    this.io = new IoReporter(this.ioClient, {
      createTimeoutMs: c.io_create_timeout,
      updateTimeoutMs: c.io_update_timeout,
      workers: c.io_workers,
      onWatchdog: () => this.shutdown(false),
    });
    await this.ioClient.ready('IOInfo');
    this.listReg = await this.server.register(EgressInternal.ListActiveEgress, '', () => new ListActiveEgressResponse({ egressIds: [...this.active.keys()] }));
    this.monitor.start();
    await this.startHttp();
    // Twitch's ingest list is fetched here, in the background, never while a request is validated.
    if (c.twitch_ingests_file && !c.twitch_ingest_template) void refreshTwitchIngests(c.twitch_ingests_file);
    this.templates = await startTemplateServer(c);
    const poolSize = browserPoolSizeOf(c, this.monitor.cores);
    if (poolSize > 0) {
      this.pool = new BrowserPool({ size: poolSize, configYaml: this.configYaml, ...(this.opts.handlerEntry ? { entry: this.opts.handlerEntry } : {}) });
      this.pool.start();
      log.info(`browser pool: ${poolSize} pre-launched browser(s)`);
    }
    this.startReg = await this.server.register(EgressInternal.StartEgress, c.cluster_id, (req, ctx) => this.onStartEgress(req, ctx.requestId), {
      affinity: (req) => this.affinity(req),
    });
    log.info(`service ready [node:${this.nodeId}] [cluster:${c.cluster_id || '""'}] [cores:${this.monitor.cores}]`);
  }

  private checkCores(): void {
    const k = this.config.cpu_cost;
    const costs = [k.room_composite_cpu_cost, k.audio_room_composite_cpu_cost, k.web_cpu_cost, k.audio_web_cpu_cost, k.participant_cpu_cost, k.track_composite_cpu_cost, k.track_cpu_cost];
    const cores = this.monitor.cores;
    if (cores < Math.min(...costs)) throw new EgressError('E_CONFIG', 'internal', 'not enough cpu');
    if (cores < k.web_cpu_cost) log.warn(`${cores} cores < web_cpu_cost ${k.web_cpu_cost}: web egress requests (even at 720p30) will be rejected (not enough CPU)`);
  }

  /** psrpc affinity: −1 cannot accept, 0.5 idle, 1.0 busy. */
  affinity(req: StartEgressRequest): number {
    if (this.isRetry(req)) return 1;
    if (this.isDisabled() || !servesRequest(req)) return -1;
    const request = req.request as EgressRequest;
    if (!this.monitor.canAccept(costOf(request, this.config, req.estimatedCpu), usesChrome(request))) return -1;
    return this.activeCount === 0 ? 0.5 : 1;
  }

  private rememberFinished(id: string): void {
    const now = Date.now();
    this.finished.set(id, now);
    if (this.finished.size > FINISHED_MEMORY_MAX) {
      for (const [k, t] of this.finished) {
        if (now - t > FINISHED_MEMORY_MS || this.finished.size > FINISHED_MEMORY_MAX) {
          this.finished.delete(k);
          this.answers.delete(k);
        } else break;
      }
    }
  }

  private isDuplicate(id: string): boolean {
    if (this.active.has(id) || this.starting.has(id)) return true;
    const t = this.finished.get(id);
    return t !== undefined && Date.now() - t < FINISHED_MEMORY_MS;
  }

  /** Whether `req` repeats (same payload) a StartEgress this worker has taken and still runs. */
  private isRetry(req: StartEgressRequest): boolean {
    const prior = this.answers.get(req.egressId);
    return prior !== undefined && prior.payload === payloadKey(req);
  }

  private onStartEgress(req: StartEgressRequest, requestId: string): Promise<EgressInfo> {
    const id = req.egressId;
    const prior = this.answers.get(id);
    if (prior && prior.payload === payloadKey(req)) {
      log.info(`StartEgress retried by the server: answering with the first attempt's result [egress:${id}] [request:${requestId.slice(0, 40)}]`);
      return prior.answer.then((info) => info.clone());
    }
    const answer = this.startEgress(req, requestId);
    if (!prior) {
      this.answers.set(id, { payload: payloadKey(req), answer });
      // A start refused before anything ran (admission) may be retried for real; one whose handler
      // was forked and failed has been reported FAILED, and livekit-server's retry of it (it retries
      // unavailable and deadline errors) gets that same error, not `egress already exists`.
      answer.catch(() => {
        if (!this.active.get(id)?.startFailed) this.answers.delete(id);
      });
    }
    return answer;
  }

  private async startEgress(req: StartEgressRequest, requestId: string): Promise<EgressInfo> {
    const id = req.egressId;
    log.info(`StartEgress received [egress:${id}] [request:${requestId.slice(0, 40)}]`);
    if (this.shuttingDown) throw errShuttingDown();
    if (this.isDuplicate(id)) throw errAlreadyExists();
    const request = req.request as EgressRequest;
    const now = new Date();
    const envelope = envelopeOf(req);
    // Validation first: nothing is spawned for an invalid request.
    const plan = buildPipelinePlan(envelope, this.config, now);
    if (!servesRequest(req)) throw errInvalidInput('request type not supported by this egress instance');
    assertRunnable(plan);
    const cost: RequestCost = costOf(request, this.config, req.estimatedCpu);
    const chrome = usesChrome(request);
    if (!this.monitor.canAccept(cost, chrome)) throw errNotEnoughCpu();
    if (this.isDuplicate(id)) throw errAlreadyExists();
    this.starting.add(id);
    this.monitor.accept(id, cost, chrome);
    const info = initialEgressInfo(plan, envelope, now);
    const a: Active = { id, plan, requestType: plan.requestType, request: info.request, info, handler: null, regs: [], result: null };
    try {
      a.regs.push(await this.server.register(EgressHandler.StopEgress, id, (r: StopEgressRequest) => this.onStopEgress(id, r)));
      a.regs.push(await this.server.register(EgressHandler.UpdateStream, id, (r: UpdateStreamRequest) => this.onUpdateStream(id, r)));
      let orphanTree: readonly ProcStat[] = [];
      const handler = new HandlerProcess(info, {
        ...(this.opts.handlerEntry ? { entry: this.opts.handlerEntry } : {}),
        ...(this.opts.handlerReadyTimeoutMs ? { readyTimeoutMs: this.opts.handlerReadyTimeoutMs } : {}),
        onExit: () => {
          orphanTree = this.monitor.treeOf(id);
          killAllButPipeline(orphanTree);
        },
      });
      a.handler = handler;
      this.active.set(id, a);
      handler.on('update', (i) => this.onHandlerUpdate(a, i));
      handler.on('uploadMetric', (o) => recordUploadObservation(this.metrics.registry, o));
      const created = this.io.create(info);
      // A page egress takes a pre-forked handler with its browser idle when the pool has one.
      const prewarmed = chrome ? (this.pool?.take() ?? undefined) : undefined;
      if (prewarmed) log.info(`egress takes a pooled handler (pid ${prewarmed.pid ?? '?'}) [egress:${id}]`);
      const launched = handler.start(req, now.getTime(), this.configYaml, prewarmed).then(() => {
        if (handler.pid !== undefined) this.monitor.setPid(id, handler.pid);
      });
      void handler.done.then(async (final) => {
        if (handler.diedUnexpectedly) {
          // What the dead handler recorded is finished by its pipeline and delivered from here.
          await finishOrphanedPipeline(orphanTree);
          await deliverOrphanedFile(plan, final, this.config);
        }
        await this.onHandlerDone(a, final);
      });
      const [c, l] = await Promise.allSettled([created, launched]);
      if (c.status === 'rejected' || l.status === 'rejected') {
        const err = c.status === 'rejected' ? c.reason : (l as PromiseRejectedResult).reason;
        log.error(`StartEgress failed: ${toEgressError(err).message} [egress:${id}]`);
        a.result = 'process_error';
        a.startFailed = true;
        handler.killProcess();
        throw err;
      }
      log.info(`egress accepted [egress:${id}] [type:${plan.requestType}]`);
      return info.clone();
    } catch (err) {
      if (!a.handler) {
        for (const r of a.regs) await r.close().catch(() => undefined);
        this.monitor.release(id);
        this.active.delete(id);
      }
      throw err;
    } finally {
      this.starting.delete(id);
    }
  }

  private onHandlerUpdate(a: Active, info: EgressInfo): void {
    a.info = info;
    log.info(`egress ${statusName(info.status)} [egress:${a.id}]`);
    this.io.update(info);
    // The original drains on an internal error reported while running.
    if (info.errorCode === 500 && !isTerminal(info.status)) {
      log.error(`internal error reported by a handler, draining: ${info.error} [egress:${a.id}]`);
      this.shutdown(false);
    }
  }

  private async onHandlerDone(a: Active, final: EgressInfo): Promise<void> {
    if (a.handler?.silentExit) {
      // The original's DuplicateIdentitySilentExit: the last reported status stands.
      log.warn(`egress exited silently: ${final.error} [egress:${a.id}]`);
      a.result ??= 'duplicate_identity';
    } else {
      a.info = final;
      log.info(`egress ended ${statusName(final.status)}${final.error ? `: ${final.error}` : ''} [egress:${a.id}]`);
      this.io.update(final);
    }
    this.metrics.handlerResults.inc({ type: a.requestType, result: a.result ?? (a.handler?.diedUnexpectedly ? 'process_error' : resultOf(final)) });
    for (const r of a.regs) await r.close().catch(() => undefined);
    a.regs = [];
    this.monitor.release(a.id);
    this.active.delete(a.id);
    if (!a.startFailed) this.answers.delete(a.id);
    this.rememberFinished(a.id);
    this.maybeFinishShutdown();
  }

  private async onStopEgress(id: string, r: StopEgressRequest): Promise<EgressInfo> {
    const a = this.active.get(id);
    if (!a || (r.egressId !== '' && r.egressId !== id)) throw errNotFound('egress not found');
    if (isTerminal(a.info.status)) {
      throw new EgressError('E_INVALID_STATE', 'failed_precondition', `egress with status ${statusName(a.info.status)} cannot be stopped`);
    }
    if (!a.handler) return abortedReply(a.info);
    const info = await a.handler.stop('StopEgress API');
    return abortedReply(info);
  }

  private async onUpdateStream(id: string, r: UpdateStreamRequest): Promise<EgressInfo> {
    const a = this.active.get(id);
    if (!a || (r.egressId !== '' && r.egressId !== id)) throw errNotFound('egress not found');
    if (!a.plan.stream || a.plan.stream.protocol === 'websocket') throw errInvalidInput('UpdateStream called on non-streaming egress');
    if (!a.handler) throw new EgressError('E_INVALID_STATE', 'failed_precondition', 'egress is not running yet');
    return a.handler.updateStream(r.addOutputUrls, r.removeOutputUrls);
  }

  private cpuDrain(id: string): void {
    const a = this.active.get(id);
    if (!a?.handler) return;
    log.warn(`CPU overloaded: stopping the egress using the most CPU [egress:${id}]`);
    a.result = 'stopped_cpu';
    void a.handler.stop('CPU exhausted');
  }

  private killEgress(id: string, error: string, result: HandlerResult): void {
    const a = this.active.get(id);
    if (!a?.handler) return;
    log.error(`killing egress: ${error} [egress:${id}]`);
    a.result = result;
    a.handler.kill(error, 403);
  }

  /** Health JSON: available cores as `CpuLoad`, one key per running egress. */
  status(): Record<string, unknown> {
    const out: Record<string, unknown> = { CpuLoad: this.monitor.availableCpu() };
    for (const a of this.active.values()) {
      const r = a.request;
      if (r.case === undefined) continue;
      out[a.id] = { [GO_ONEOF[r.case] ?? r.case]: r.value.toJson({ useProtoFieldName: true, enumAsInteger: true }) };
    }
    return out;
  }

  private async startHttp(): Promise<void> {
    const c = this.config;
    const listen = (port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> =>
      new Promise((resolve, reject) => {
        const s = createServer(handler);
        s.once('error', reject);
        s.listen(port, () => {
          s.off('error', reject);
          this.httpServers.push(s);
          resolve();
        });
      });
    if (c.health_port > 0) {
      await listen(c.health_port, (_req, res) => {
        const body = JSON.stringify(this.status());
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    }
    if (c.prometheus_port > 0) {
      await listen(c.prometheus_port, (_req, res) => {
        void this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      });
    }
  }

  /**
   * Stops taking requests (StartEgress deregistered). With `kill`, every running egress ends FAILED
   * 403 `server is shutting down`; otherwise they finish normally. The service
   * exits once idle.
   */
  shutdown(kill: boolean): void {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.terminating = true;
      log.info(kill ? 'shutting down: ending all egresses' : 'draining: waiting for running egresses to finish');
      void this.startReg?.close().catch(() => undefined);
      // No request will take a pooled browser any more.
      void this.pool?.close();
    }
    if (kill) {
      for (const a of this.active.values()) {
        if (a.handler && !a.handler.isFinished) {
          a.result = 'killed_shutdown';
          a.handler.kill('server is shutting down', 403);
        }
      }
    }
    this.maybeFinishShutdown();
  }

  private maybeFinishShutdown(): void {
    if (!this.shuttingDown || this.stopped || this.active.size > 0 || this.starting.size > 0) return;
    this.stopped = true;
    void this.close().finally(() => this.resolveDone());
  }

  private async close(): Promise<void> {
    this.monitor.stop();
    await this.pool?.close();
    await settleWithin(this.startReg?.close(), REDIS_CLOSE_GRACE_MS);
    await this.io?.drain(30_000);
    this.io?.close();
    const deadline = Date.now() + REDIS_CLOSE_GRACE_MS;
    await settleWithin(this.listReg?.close(), deadline - Date.now());
    await settleWithin(this.server?.close(true), deadline - Date.now());
    await settleWithin(this.ioClient?.close(), deadline - Date.now());
    await this.bus?.close().catch(() => undefined);
    await this.templates?.close();
    for (const s of this.httpServers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    log.info('service stopped');
  }
}

/**
 * Deregistering (unsubscribing) needs Redis. With Redis unreachable the client queues those
 * commands until it reconnects, which may be never: a worker asked to stop gives deregistration this
 * long (StartEgress first, then the rest together), then closes its connections anyway
 * (livekit-server forgets a silent worker by itself).
 */
const REDIS_CLOSE_GRACE_MS = 3000;

async function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
  clearTimeout(timer);
}

function resultOf(info: EgressInfo): HandlerResult {
  switch (info.status) {
    case EgressStatus.EGRESS_COMPLETE:
      return 'completed';
    case EgressStatus.EGRESS_ABORTED:
      return 'aborted';
    case EgressStatus.EGRESS_LIMIT_REACHED:
      return 'limit_reached';
    default:
      return 'failed';
  }
}

/** A StartEgress's payload, to tell a server retry (same bytes) from another request with the same id. */
function payloadKey(req: StartEgressRequest): string {
  return Buffer.from(req.toBinary()).toString('base64');
}
