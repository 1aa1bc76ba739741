/**
 * A small in-test fake egress worker built only on the psrpc module: serves
 * EgressInternal.StartEgress (cluster_id topic, affinity), ListActiveEgress, and per-egress
 * EgressHandler.StopEgress / UpdateStream, and reports through IOInfo.CreateEgress/UpdateEgress.
 * It records nothing; it only drives statuses so tests can observe livekit-server's behaviour.
 */
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import type { StopEgressRequest, UpdateStreamRequest } from '@livekit/protocol';
import { PsrpcClient, PsrpcError, PsrpcServer, RedisBus } from '../../main/rpc/psrpc/index.js';
import type { Registration, RequestContext } from '../../main/rpc/psrpc/index.js';
import { ListActiveEgressResponse } from '../../main/rpc/messages.js';
import type { ListActiveEgressRequest, StartEgressRequest } from '../../main/rpc/messages.js';
import { EgressHandler, EgressInternal, IOInfo } from '../../main/rpc/services.js';

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

export interface FakeWorkerOptions {
  redisUrl: string;
  name?: string;
  clusterId?: string;
  /** Affinity for StartEgress; default 1. Receives the number of active egresses. */
  affinity?: number | ((active: number) => number);
  /** Called before a *new* egress is created (e.g. to delay past lk's attempt timeout). */
  beforeCreate?: (req: StartEgressRequest, ctx: RequestContext) => Promise<void>;
  /** Move to ACTIVE right after the StartEgress reply. Default true. */
  autoActivate?: boolean;
}

interface Egress {
  info: EgressInfo;
  regs: Registration[];
  /** Serializes IOInfo updates per egress, in order. */
  updates: Promise<void>;
}

export class FakeWorker {
  readonly name: string;
  bus!: RedisBus;
  server!: PsrpcServer;
  io!: PsrpcClient;
  /** Every StartEgress request handled (after winning the claim): request id + egress id. */
  readonly startRequests: Array<{ requestId: string; egressId: string }> = [];
  /** Egress ids this worker created. */
  readonly created: string[] = [];
  readonly egresses = new Map<string, Egress>();
  private readonly starting = new Map<string, Promise<EgressInfo>>();
  private regs: Registration[] = [];
  private readonly updateErrors: unknown[] = [];

  constructor(private readonly opts: FakeWorkerOptions) {
    this.name = opts.name ?? 'worker';
  }

  get active(): number {
    let n = 0;
    for (const e of this.egresses.values()) if (e.info.status < EgressStatus.EGRESS_COMPLETE) n++;
    return n;
  }

  get errors(): readonly unknown[] {
    return this.updateErrors;
  }

  async start(): Promise<this> {
    this.bus = await RedisBus.connect({ redis: this.opts.redisUrl });
    this.server = new PsrpcServer(this.bus);
    this.io = new PsrpcClient(this.bus, { timeoutMs: 10_000, selectionTimeoutMs: 2000 });
    await this.io.ready('IOInfo');
    this.regs.push(
      await this.server.register(EgressInternal.ListActiveEgress, '', (_req: ListActiveEgressRequest) =>
        new ListActiveEgressResponse({ egressIds: [...this.egresses.values()].filter((e) => e.info.status < EgressStatus.EGRESS_COMPLETE).map((e) => e.info.egressId) }),
      ),
    );
    this.regs.push(
      await this.server.register(EgressInternal.StartEgress, this.opts.clusterId ?? '', (req, ctx) => this.onStart(req, ctx), {
        affinity: () => {
          const a = this.opts.affinity ?? 1;
          return typeof a === 'number' ? a : a(this.active + this.starting.size);
        },
      }),
    );
    return this;
  }

  private onStart(req: StartEgressRequest, ctx: RequestContext): Promise<EgressInfo> {
    this.startRequests.push({ requestId: ctx.requestId, egressId: req.egressId });
    if (!req.egressId) throw new PsrpcError('invalid_argument', 'request has missing or invalid field: egress_id');
    // Dedup on egress_id: a retried StartEgress (new request id) gets the current info.
    const existing = this.egresses.get(req.egressId);
    if (existing) return Promise.resolve(existing.info.clone());
    const pending = this.starting.get(req.egressId);
    if (pending) return pending.then((i) => i.clone());
    const p = this.create(req, ctx).finally(() => this.starting.delete(req.egressId));
    this.starting.set(req.egressId, p);
    return p.then((i) => i.clone());
  }

  private async create(req: StartEgressRequest, ctx: RequestContext): Promise<EgressInfo> {
    if (this.opts.beforeCreate) await this.opts.beforeCreate(req, ctx);
    const now = nowNs();
    const info = new EgressInfo({
      egressId: req.egressId,
      roomId: req.roomId,
      status: EgressStatus.EGRESS_STARTING,
      startedAt: now,
      updatedAt: now,
    });
    switch (req.request.case) {
      case 'web':
        info.request = { case: 'web', value: req.request.value };
        break;
      case 'roomComposite':
        info.request = { case: 'roomComposite', value: req.request.value };
        info.roomName = req.request.value.roomName;
        break;
      case 'participant':
        info.request = { case: 'participant', value: req.request.value };
        info.roomName = req.request.value.roomName;
        break;
      case 'trackComposite':
        info.request = { case: 'trackComposite', value: req.request.value };
        info.roomName = req.request.value.roomName;
        break;
      case 'track':
        info.request = { case: 'track', value: req.request.value };
        info.roomName = req.request.value.roomName;
        break;
      case 'egress':
        info.request = { case: 'egress', value: req.request.value };
        info.roomName = req.request.value.roomName;
        break;
      default:
        break;
    }
    const eg: Egress = { info, regs: [], updates: Promise.resolve() };
    this.egresses.set(req.egressId, eg);
    this.created.push(req.egressId);
    eg.regs.push(await this.server.register(EgressHandler.StopEgress, req.egressId, (r: StopEgressRequest) => this.onStop(r)));
    eg.regs.push(await this.server.register(EgressHandler.UpdateStream, req.egressId, (r: UpdateStreamRequest) => this.onUpdateStream(r)));
    await this.io.call(IOInfo.CreateEgress, undefined, info.clone(), { timeoutMs: 15_000 });
    if (this.opts.autoActivate ?? true) {
      setTimeout(() => this.setStatus(req.egressId, EgressStatus.EGRESS_ACTIVE), 50);
    }
    return info;
  }

  /** Queues an IOInfo.UpdateEgress with the new status (in order per egress). */
  setStatus(egressId: string, status: EgressStatus, patch: Partial<Pick<EgressInfo, 'error' | 'errorCode' | 'details'>> = {}): Promise<void> {
    const eg = this.egresses.get(egressId);
    if (!eg) return Promise.resolve();
    const now = nowNs();
    eg.info.status = status;
    eg.info.updatedAt = now;
    Object.assign(eg.info, patch);
    if (status >= EgressStatus.EGRESS_COMPLETE) eg.info.endedAt = now;
    const snapshot = eg.info.clone();
    eg.updates = eg.updates.then(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await this.io.call(IOInfo.UpdateEgress, undefined, snapshot, { timeoutMs: 5000 });
          return;
        } catch (err) {
          if (err instanceof PsrpcError && (err.code === 'unavailable' || err.code === 'deadline_exceeded') && attempt < 4) {
            await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
            continue;
          }
          this.updateErrors.push(err);
          return;
        }
      }
    });
    return eg.updates;
  }

  private onStop(r: StopEgressRequest): EgressInfo {
    const eg = this.egresses.get(r.egressId);
    if (!eg) throw new PsrpcError('not_found', 'egress not found');
    if (eg.info.status === EgressStatus.EGRESS_ACTIVE) {
      void this.setStatus(r.egressId, EgressStatus.EGRESS_ENDING, { details: 'End reason: StopEgress API' });
      const reply = eg.info.clone();
      setTimeout(() => void this.finish(r.egressId, EgressStatus.EGRESS_COMPLETE), 100);
      return reply;
    }
    if (eg.info.status === EgressStatus.EGRESS_STARTING) {
      void this.finish(r.egressId, EgressStatus.EGRESS_ABORTED, { error: 'Stop called before pipeline could start', errorCode: 412 });
      return eg.info.clone();
    }
    throw new PsrpcError('failed_precondition', `egress with status ${EgressStatus[eg.info.status]} cannot be stopped`);
  }

  private onUpdateStream(r: UpdateStreamRequest): EgressInfo {
    const eg = this.egresses.get(r.egressId);
    if (!eg) throw new PsrpcError('not_found', 'egress not found');
    throw new PsrpcError('invalid_argument', 'UpdateStream called on non-streaming egress');
  }

  /** Sends the terminal status and unsubscribes the egress's handler topics. */
  async finish(egressId: string, status: EgressStatus, patch: Partial<Pick<EgressInfo, 'error' | 'errorCode' | 'details'>> = {}): Promise<void> {
    const eg = this.egresses.get(egressId);
    if (!eg) return;
    const done = this.setStatus(egressId, status, patch);
    for (const reg of eg.regs) await reg.close();
    eg.regs = [];
    await done;
  }

  async stop(): Promise<void> {
    for (const reg of this.regs) await reg.close();
    for (const eg of this.egresses.values()) for (const reg of eg.regs) await reg.close();
    await this.server.close(true);
    await this.io.close();
    await this.bus.close();
  }
}
