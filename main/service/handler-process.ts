/**
 * Worker side of one handler process: forks `handler-entry.js` in its
 * own session, hands it the request and config, waits for the ready handshake (30 s), relays its
 * validated EgressInfo updates, and turns an unexpected exit into FAILED 500 with the process error
 * (Go's exec error text: `signal: killed`, `exit status 1`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { EgressError } from '../contracts/errors.js';
import { canTransition, isTerminal } from '../egress/status.js';
import { logger } from '../log.js';
import type { StartEgressRequest } from '../rpc/messages.js';
import type { UploadObservation } from '../upload/metrics.js';
import { decodeInfo, HANDLER_READY_TIMEOUT_MS, parseHandlerMessage, type StopReason, type WorkerToHandler } from './ipc.js';

const log = logger('service');

export const HANDLER_ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'handler-entry.js');

/** Forks handler-entry in its own session (process group), IPC over JSON. */
export function forkHandler(entry: string | undefined, args: string[]): ChildProcess {
  return fork(entry ?? HANDLER_ENTRY, args, {
    detached: true,
    execArgv: [],
    serialization: 'json',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** `handler failed to start` (500), the original's text. */
export function errHandlerFailedToStart(): EgressError {
  return new EgressError('E_INTERNAL', 'internal', 'handler failed to start');
}

const GO_SIGNAL_TEXT: Record<string, string> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGINT: 'interrupt',
  SIGSEGV: 'segmentation fault',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGQUIT: 'quit',
  SIGHUP: 'hangup',
  SIGPIPE: 'broken pipe',
  SIGILL: 'illegal instruction',
  SIGFPE: 'floating point exception',
};

/** The text Go's exec.ExitError prints for this exit. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `signal: ${GO_SIGNAL_TEXT[signal] ?? signal}`;
  return `exit status ${code ?? 0}`;
}

export interface HandlerProcessEvents {
  update: [EgressInfo];
  /** An upload the handler counted (its worker's /metrics shows it). */
  uploadMetric: [UploadObservation];
}

export interface HandlerProcessOptions {
  readonly entry?: string;
  readonly readyTimeoutMs?: number;
  /** Called when the handler is gone, before `done` resolves (e.g. to kill leftover children). */
  readonly onExit?: () => void;
}

export class HandlerProcess extends EventEmitter<HandlerProcessEvents> {
  private child: ChildProcess | null = null;
  private info: EgressInfo;
  private final: EgressInfo | null = null;
  private seq = 0;
  private readonly stopWaiters = new Map<number, (info: EgressInfo) => void>();
  private readonly updateWaiters = new Map<number, (r: { info?: EgressInfo; error?: EgressError }) => void>();
  private resolveDone!: (info: EgressInfo) => void;
  /** Resolves with the final EgressInfo (never rejects). */
  readonly done: Promise<EgressInfo>;
  private readyResolve: (() => void) | null = null;
  private exited = false;
  /** True when the process ended without sending its final status (crash, SIGKILL). */
  diedUnexpectedly = false;
  /** True when the handler exited silently (duplicate recorder identity): no final update is sent. */
  silentExit = false;

  constructor(
    initial: EgressInfo,
    private readonly opts: HandlerProcessOptions = {},
  ) {
    super();
    this.info = initial.clone();
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  get egressId(): string {
    return this.info.egressId;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The latest info known (STARTING until the handler reports). */
  get latest(): EgressInfo {
    return this.info.clone();
  }

  get isFinished(): boolean {
    return this.final !== null;
  }

  /**
   * Forks the handler and sends it the request; resolves on its ready message. On timeout or an
   * early exit the process is killed and this rejects with `handler failed to start` (500); `done`
   * then resolves with a FAILED info.
   */
  start(req: StartEgressRequest, nowMs: number, configYaml: string, prewarmed?: ChildProcess): Promise<void> {
    // The egress id in argv makes `ps` show which egress a handler runs (a pool handler's says `warm-pool`).
    const child = prewarmed ?? forkHandler(this.opts.entry, [this.egressId]);
    this.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        log.error(`handler did not become ready in ${this.opts.readyTimeoutMs ?? HANDLER_READY_TIMEOUT_MS} ms [egress:${this.egressId}]`);
        this.readyResolve = null;
        this.killProcess();
        reject(errHandlerFailedToStart());
      }, this.opts.readyTimeoutMs ?? HANDLER_READY_TIMEOUT_MS);
      this.readyResolve = () => {
        clearTimeout(timer);
        this.readyResolve = null;
        resolve();
      };
      child.once('exit', () => {
        if (this.readyResolve) {
          clearTimeout(timer);
          this.readyResolve = null;
          reject(errHandlerFailedToStart());
        }
      });
    });
    child.on('message', (m: unknown) => this.onMessage(m));
    child.on('error', (err) => log.error(`handler process error: ${err.message} [egress:${this.egressId}]`));
    child.on('exit', (code, signal) => this.onExit(code, signal));
    this.sendMsg({ type: 'start', request: Buffer.from(req.toBinary()).toString('base64'), nowMs, config: configYaml });
    return ready;
  }

  private sendMsg(m: WorkerToHandler): void {
    const c = this.child;
    if (!c || !c.connected) return;
    try {
      c.send(m, (err) => {
        if (err) log.warn(`handler IPC send failed: ${err.message} [egress:${this.egressId}]`);
      });
    } catch (err) {
      log.warn(`handler IPC send failed: ${(err as Error).message} [egress:${this.egressId}]`);
    }
  }

  /** Validates an info from the handler: same egress, and a legal forward transition (or same status). */
  private accept(s: string): EgressInfo | null {
    let info: EgressInfo;
    try {
      info = decodeInfo(s);
    } catch {
      log.warn(`handler sent an undecodable EgressInfo [egress:${this.egressId}]`);
      return null;
    }
    if (info.egressId !== this.egressId) {
      log.warn(`handler sent an EgressInfo of another egress [egress:${this.egressId}]`);
      return null;
    }
    if (info.status !== this.info.status && !canTransition(this.info.status, info.status)) {
      log.warn(`handler sent an illegal transition ${EgressStatus[this.info.status]} → ${EgressStatus[info.status]} [egress:${this.egressId}]`);
      return null;
    }
    return info;
  }

  private onMessage(raw: unknown): void {
    const m = parseHandlerMessage(raw);
    if (!m) {
      log.warn(`dropped an invalid IPC message from the handler [egress:${this.egressId}]`);
      return;
    }
    switch (m.type) {
      case 'ready':
        if (m.egressId === this.egressId) this.readyResolve?.();
        break;
      case 'warm':
        break;
      case 'uploadMetric':
        this.emit('uploadMetric', m.observation);
        break;
      case 'update': {
        if (this.final) return;
        const info = this.accept(m.info);
        if (!info || isTerminal(info.status)) return;
        this.info = info;
        this.emit('update', info.clone());
        break;
      }
      case 'streamUpdated': {
        const w = this.updateWaiters.get(m.seq);
        if (!w) return;
        if (m.error) {
          w({ error: new EgressError('E_STREAM', m.error.code, m.error.message) });
          return;
        }
        let info: EgressInfo | null = null;
        try {
          info = m.info ? decodeInfo(m.info) : null;
        } catch {
          info = null;
        }
        w(info && info.egressId === this.egressId ? { info } : { error: new EgressError('E_INTERNAL', 'internal', 'invalid UpdateStream answer from the handler') });
        break;
      }
      case 'stopped': {
        const w = this.stopWaiters.get(m.seq);
        if (!w) return;
        let info: EgressInfo;
        try {
          info = decodeInfo(m.info);
        } catch {
          return;
        }
        if (info.egressId === this.egressId) w(info);
        break;
      }
      case 'finished': {
        if (this.final) return;
        const info = this.accept(m.info);
        if (!info || !isTerminal(info.status)) {
          log.warn(`handler finished without a valid final status [egress:${this.egressId}]`);
          return;
        }
        this.silentExit = m.silent === true;
        this.setFinal(info);
        break;
      }
    }
  }

  private setFinal(info: EgressInfo): void {
    if (this.final) return;
    this.final = info;
    this.info = info;
    for (const w of this.stopWaiters.values()) w(info);
    this.stopWaiters.clear();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    if (!this.final) {
      const text = exitText(code, signal);
      this.diedUnexpectedly = true;
      log.error(`handler process died: ${text} [egress:${this.egressId}]`);
      const failed = this.info.clone();
      const now = BigInt(Date.now()) * 1_000_000n;
      failed.status = EgressStatus.EGRESS_FAILED;
      failed.error = text;
      failed.errorCode = 500;
      failed.details = 'End reason: Failure';
      failed.updatedAt = now;
      failed.endedAt = now;
      this.setFinal(failed);
    }
    try {
      this.opts.onExit?.();
    } finally {
      this.resolveDone(this.final as EgressInfo);
    }
  }

  /**
   * Asks the handler to stop; resolves with the info right after the request (ENDING when it was
   * recording). Falls back to the latest info if the handler does not answer within 1.5 s (lk waits 3 s).
   */
  stop(reason: StopReason): Promise<EgressInfo> {
    if (this.final) return Promise.resolve(this.final.clone());
    const seq = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stopWaiters.delete(seq);
        resolve(this.info.clone());
      }, 1500);
      this.stopWaiters.set(seq, (info) => {
        clearTimeout(timer);
        this.stopWaiters.delete(seq);
        resolve(info.clone());
      });
      this.sendMsg({ type: 'stop', seq, reason });
    });
  }

  /**
   * UpdateStream: the handler applies the URL changes and answers with the info after them, or
   * with the original's error (texts joined by newlines, code of the first).
   */
  updateStream(add: string[], remove: string[]): Promise<EgressInfo> {
    if (this.final) return Promise.reject(new EgressError('E_INVALID_STATE', 'failed_precondition', 'egress has ended'));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.updateWaiters.delete(seq);
        reject(new EgressError('E_INTERNAL', 'deadline_exceeded', 'UpdateStream timed out'));
      }, 10_000);
      this.updateWaiters.set(seq, (r) => {
        clearTimeout(timer);
        this.updateWaiters.delete(seq);
        if (r.info) resolve(r.info.clone());
        else reject(r.error);
      });
      this.sendMsg({ type: 'updateStream', seq, add, remove });
    });
  }

  /** Ends the egress as FAILED with this error (shutdown with SIGINT, CPU/OOM kill). */
  kill(error: string, code: number, hardAfterMs = 60_000): void {
    if (this.final) return;
    this.sendMsg({ type: 'kill', error, code });
    const t = setTimeout(() => this.killProcess(), hardAfterMs);
    t.unref();
    void this.done.then(() => clearTimeout(t));
  }

  /** SIGKILLs the handler process (its own process group). */
  killProcess(): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.exited) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        this.child?.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** EgressInfo for a StopEgress answer while still STARTING. */
export function abortedReply(info: EgressInfo): EgressInfo {
  const out = info.clone();
  if (out.status !== EgressStatus.EGRESS_STARTING) return out;
  const now = BigInt(Date.now()) * 1_000_000n;
  out.status = EgressStatus.EGRESS_ABORTED;
  out.error = 'Stop called before pipeline could start';
  out.errorCode = 412;
  out.details = 'End reason: StopEgress API';
  out.updatedAt = now;
  out.endedAt = now;
  return out;
}
