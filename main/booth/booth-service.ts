import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { EgressInfo } from '@livekit/protocol';
import type { ServiceConfig } from '../config/index.js';
import { EgressError } from '../contracts/errors.js';
import type { BoothEvent, BoothOperation, BoothRecordingState, BoothSettings, BoothStart, BoothState, BoothStatusName, RecordingEntry, RevealResult } from '../contracts/ipc.js';
import { StaticServer } from '../capture/static-server.js';
import { startTemplateServer, type TemplateServer } from '../capture/template-server.js';
import { createWebEgress, type CaptureHostFactory } from '../egress/create-web-egress.js';
import { newEgressId } from '../egress/ids.js';
import { isTerminal, statusName } from '../egress/status.js';
import type { WebEgressController } from '../egress/web-egress.js';
import { logger } from '../log.js';
import { boothEnvelope, describeSource } from './booth-request.js';
import { RecordingList } from './recordings.js';
import { BoothSettingsStore } from './settings.js';

/**
 * The booth service: owns the booth's recordings, for both transports (Electron IPC and the
 * console's HTTP API), which only validate requests and relay events. One recording at a time — a
 * booth is one operator and one machine's encoder; a second start is refused with 409 while one
 * runs. Every recording goes through the product's own path (createWebEgress → WebEgressController),
 * so requests are validated and errors worded as the original's.
 */

const log = logger('booth');

export interface BoothServiceOptions {
  readonly config: ServiceConfig;
  /** Where settings.json and recordings.json live (config-dir.ts). */
  readonly configDir: string;
  /** Default folder of local recordings (also the base of relative folders). */
  readonly recordingsDir: string;
  /** The bundled pages (templates/: demo page). */
  readonly templatesDir: string;
  /** Default: Debian's Chromium; the Electron app passes its offscreen-window host. */
  readonly hostFactory?: CaptureHostFactory;
  /** Shows a file in its folder (Electron's shell); absent in the console. */
  readonly reveal?: (path: string) => void;
  /** Preview refresh while recording (ms). */
  readonly previewIntervalMs?: number;
  /** Preview width (px). */
  readonly previewWidth?: number;
}

export interface BoothServiceEvents {
  event: [BoothEvent];
}

interface Current {
  readonly egressId: string;
  readonly start: BoothStart;
  readonly source: string;
  controller: WebEgressController | null;
  activeAtMs: number;
  /** When the stop was asked (ms), 0 before: the elapsed time stops there. */
  stopAtMs: number;
  bytes: number;
  phase: string;
  upload: { sentBytes: number; totalBytes: number } | null;
  info: EgressInfo | null;
  readonly timers: NodeJS.Timeout[];
  done: Promise<void>;
}

/** How often live state (elapsed, bytes, audio level) is sent while recording. */
const TICK_MS = 250;

export class BoothService extends EventEmitter<BoothServiceEvents> {
  readonly #opts: BoothServiceOptions;
  readonly #recordings: RecordingList;
  readonly #settings: BoothSettingsStore;
  #current: Current | null = null;
  #last: BoothRecordingState | null = null;
  #demo: { server: StaticServer; url: Promise<string> } | null = null;
  #templates: Promise<TemplateServer> | null = null;
  #previewSeq = 0;
  #closed = false;

  constructor(opts: BoothServiceOptions) {
    super();
    this.#opts = opts;
    this.#recordings = new RecordingList(opts.configDir);
    this.#settings = new BoothSettingsStore(opts.configDir);
  }

  /** Marks recordings a previous run left unfinished (the process died while recording). */
  async init(): Promise<void> {
    for (const r of await this.#recordings.list()) {
      if (r.status === 'EGRESS_STARTING' || r.status === 'EGRESS_ACTIVE' || r.status === 'EGRESS_ENDING') {
        const playable = isAbsolute(r.location) && existsSync(r.location);
        await this.#recordings.put({ ...r, status: 'EGRESS_FAILED', error: r.error || 'the booth stopped while recording', playable });
      }
    }
  }

  /**
   * Runs one operation whose input its schema (`boothOperations[op]`) has already checked: the one
   * dispatch both transports (console HTTP, Electron IPC) use.
   */
  async invoke(op: BoothOperation, data: unknown): Promise<unknown> {
    switch (op) {
      case 'getState':
        return this.state();
      case 'start':
        return this.start(data as BoothStart);
      case 'pause':
        return this.pause();
      case 'resume':
        return this.resume();
      case 'stop':
        return this.stop();
      case 'listRecordings':
        return this.listRecordings();
      case 'deleteRecording':
        return this.deleteRecording((data as { id: string }).id);
      case 'revealRecording':
        return this.revealRecording((data as { id: string }).id);
      case 'getSettings':
        return this.getSettings();
      case 'saveSettings':
        return this.saveSettings(data as BoothSettings);
    }
  }

  state(): BoothState {
    return {
      recording: this.#current ? this.#currentState(this.#current) : this.#last,
      busy: this.#current !== null,
      canReveal: this.#opts.reveal !== undefined,
      storageConfigured: this.#opts.config.storage !== undefined,
      recordingsDir: this.#opts.recordingsDir,
    };
  }

  /** Starts a recording; refused (409) while one runs. Resolves once the request is accepted. */
  async start(start: BoothStart): Promise<BoothState> {
    if (this.#closed) throw new EgressError('E_SHUTTING_DOWN', 'unavailable', 'the booth is shutting down');
    if (this.#current) {
      throw new EgressError('E_ALREADY_EXISTS', 'already_exists', `a recording is already running (${this.#current.egressId}): stop it before starting another`);
    }
    const egressId = newEgressId();
    // Taken before the first await: two starts at once cannot both pass the check above.
    const cur: Current = { egressId, start, source: describeSource(start), controller: null, activeAtMs: 0, stopAtMs: 0, bytes: 0, phase: 'starting', upload: null, info: null, timers: [], done: Promise.resolve() };
    this.#current = cur;
    try {
      const demoUrl = start.source.kind === 'web' && start.source.url === '' ? await this.#demoUrl() : '';
      const templateBase = start.source.kind === 'room' ? (await this.#templateServer()).baseUrl : '';
      const { envelope, config } = boothEnvelope(start, this.#opts.config, { egressId, demoUrl, templateBase, recordingsDir: this.#opts.recordingsDir });
      const { controller } = createWebEgress(envelope, config, {
        localBaseDir: this.#opts.recordingsDir,
        ...(this.#opts.hostFactory ? { hostFactory: this.#opts.hostFactory } : {}),
      });
      cur.controller = controller;
      cur.info = controller.info.clone();
      this.#watch(cur, controller);
      cur.done = controller.run().then((final) => this.#finished(cur, final));
    } catch (err) {
      this.#current = null;
      throw err;
    }
    log.info(`recording ${egressId} started (${cur.source})`);
    this.#emitState();
    return this.state();
  }

  pause(): BoothState {
    const c = this.#requireRecording('pause');
    if (!c.pause()) throw new EgressError('E_INVALID_STATE', 'failed_precondition', c.paused ? 'the recording is already paused' : 'the recording can be paused only while it is active');
    this.#emitState();
    return this.state();
  }

  resume(): BoothState {
    const c = this.#requireRecording('resume');
    if (!c.resume()) throw new EgressError('E_INVALID_STATE', 'failed_precondition', 'the recording is not paused');
    this.#emitState();
    return this.state();
  }

  /** Asks the recording to finish (a paused one completes with what was recorded before the pause). */
  stop(): BoothState {
    const c = this.#requireRecording('stop');
    const cur = this.#current as Current;
    if (cur.activeAtMs !== 0) cur.stopAtMs ||= Date.now();
    c.stop('StopEgress API');
    this.#emitState();
    return this.state();
  }

  listRecordings(): Promise<RecordingEntry[]> {
    return this.#recordings.list();
  }

  /** Removes a past recording from the list and deletes its local file (a stored object stays). */
  async deleteRecording(id: string): Promise<RecordingEntry[]> {
    if (this.#current?.egressId === id) throw new EgressError('E_INVALID_STATE', 'failed_precondition', 'the recording is still running: stop it first');
    const entry = await this.#recordings.get(id);
    if (!entry) throw new EgressError('E_NOT_FOUND', 'not_found', `recording ${id} not found`);
    if (entry.playable && isAbsolute(entry.location)) await rm(entry.location, { force: true });
    const list = await this.#recordings.remove(id);
    this.emit('event', { type: 'recordings', recordings: list });
    return list;
  }

  /** The local file of a past recording (for play/download), or a 404 error. */
  async localFile(id: string): Promise<string> {
    const entry = await this.#recordings.get(id);
    if (!entry || !entry.playable || !isAbsolute(entry.location) || !existsSync(entry.location)) {
      throw new EgressError('E_NOT_FOUND', 'not_found', entry ? `recording ${id} is not on this machine (${entry.location || 'no file'})` : `recording ${id} not found`);
    }
    return entry.location;
  }

  async revealRecording(id: string): Promise<RevealResult> {
    const entry = await this.#recordings.get(id);
    if (!entry) throw new EgressError('E_NOT_FOUND', 'not_found', `recording ${id} not found`);
    if (this.#opts.reveal && entry.playable) {
      this.#opts.reveal(entry.location);
      return { path: entry.location, revealed: true };
    }
    return { path: entry.location, revealed: false };
  }

  getSettings(): Promise<BoothSettings> {
    return this.#settings.read();
  }

  saveSettings(s: BoothSettings): Promise<BoothSettings> {
    return this.#settings.write(s);
  }

  /** Stops a running recording (its file is finished and listed) and the helper servers. */
  async close(): Promise<void> {
    this.#closed = true;
    const cur = this.#current;
    if (cur) {
      cur.controller?.stop('Process killed');
      await cur.done;
    }
    if (this.#demo) await this.#demo.server.close();
    if (this.#templates) await (await this.#templates).close();
  }

  #requireRecording(what: string): WebEgressController {
    const c = this.#current?.controller;
    if (!c) throw new EgressError('E_INVALID_STATE', 'failed_precondition', `nothing to ${what}: no recording is running`);
    return c;
  }

  #demoUrl(): Promise<string> {
    if (!this.#demo) {
      const server = new StaticServer(this.#opts.templatesDir);
      this.#demo = { server, url: server.listen().then((base) => `${base}demo/`) };
    }
    return this.#demo.url;
  }

  #templateServer(): Promise<TemplateServer> {
    this.#templates ??= startTemplateServer(this.#opts.config, { movable: true });
    return this.#templates;
  }

  #watch(cur: Current, controller: WebEgressController): void {
    controller.on('update', (info) => {
      cur.info = info;
      const name = statusName(info.status);
      if (name === 'EGRESS_ACTIVE' && cur.activeAtMs === 0) {
        // The recording's first instant (the file's time 0): elapsed time and the auto-stop count
        // from there, like `egress record --duration`.
        cur.activeAtMs = controller.recordingStartedAtMs ?? (Number(info.fileResults[0]?.startedAt ?? 0n) / 1e6 || Date.now());
        cur.phase = '';
        this.#onActive(cur, controller);
      }
      if (name === 'EGRESS_ENDING' || isTerminal(info.status)) {
        cur.phase = 'finishing and storing the file';
        cur.stopAtMs ||= Date.now();
      }
      this.#emitState();
    });
    controller.on('progress', ({ bytes }) => {
      cur.bytes = bytes;
    });
    controller.on('upload', (progress) => {
      cur.upload = progress;
      cur.phase = 'storing the file';
      this.#emitState();
    });
  }

  #onActive(cur: Current, controller: WebEgressController): void {
    // Listed from the moment it records: a booth that dies mid-recording still shows it (init()).
    void this.#recordings.put(this.#entryOf(cur, controller.info)).then((list) => this.emit('event', { type: 'recordings', recordings: list }));
    cur.timers.push(
      setInterval(() => {
        // ACTIVE can come before the recording's first instant is known: take it once it is.
        cur.activeAtMs = controller.recordingStartedAtMs ?? cur.activeAtMs;
        this.#emitState();
      }, TICK_MS),
    );
    const width = this.#opts.previewWidth ?? 320;
    let busy = false;
    const preview = (): void => {
      if (busy || isTerminal(controller.info.status)) return;
      busy = true;
      void controller
        .snapshot(width)
        .then((jpeg) => {
          if (jpeg && this.#current === cur) this.emit('event', { type: 'preview', egressId: cur.egressId, jpeg: `data:image/jpeg;base64,${jpeg.toString('base64')}`, seq: ++this.#previewSeq });
        })
        .finally(() => (busy = false));
    };
    preview();
    cur.timers.push(setInterval(preview, this.#opts.previewIntervalMs ?? 1000));
    if (cur.start.durationS > 0) cur.timers.push(setTimeout(() => controller.stop('StopEgress API'), Math.max(0, cur.activeAtMs + cur.start.durationS * 1000 - Date.now())));
  }

  async #finished(cur: Current, final: EgressInfo): Promise<void> {
    for (const t of cur.timers) clearInterval(t);
    cur.info = final;
    cur.phase = '';
    const entry = this.#entryOf(cur, final);
    // A recording that never started recorded nothing: not listed.
    if (cur.activeAtMs !== 0 || entry.location !== '') {
      const list = await this.#recordings.put(entry).catch((err: unknown) => {
        log.error(`could not save the recordings list: ${(err as Error).message}`);
        return null;
      });
      if (list) this.emit('event', { type: 'recordings', recordings: list });
    }
    this.#current = null;
    this.#last = this.#currentState(cur);
    log.info(`recording ${cur.egressId} ended: ${statusName(final.status)}${final.error ? ` (${final.error})` : ''}`);
    this.#emitState();
  }

  #entryOf(cur: Current, info: EgressInfo): RecordingEntry {
    const file = info.fileResults[0];
    const location = file?.location ?? '';
    const startedNs = file?.startedAt || info.startedAt;
    const toIso = (ns: bigint): string => (ns > 0n ? new Date(Number(ns / 1_000_000n)).toISOString() : '');
    const storage = this.#opts.config.storage;
    const storedIn = cur.start.outputs.destination === 'storage' && storage ? (Object.keys(storage).find((k) => ['s3', 'azure', 'gcp', 'alioss'].includes(k) && (storage as Record<string, unknown>)[k]) ?? 'storage') : 'local';
    return {
      id: cur.egressId,
      source: cur.source,
      startedAt: toIso(startedNs) || new Date(cur.activeAtMs || Date.now()).toISOString(),
      endedAt: toIso(file?.endedAt || info.endedAt),
      durationS: Number(file?.duration ?? 0n) / 1e9,
      sizeBytes: Number(file?.size ?? 0n) || cur.bytes,
      status: statusName(info.status),
      location,
      storedIn: location !== '' && isAbsolute(location) ? 'local' : storedIn,
      error: info.error,
      details: info.details,
      playable: location !== '' && isAbsolute(location) && existsSync(location),
    };
  }

  #currentState(cur: Current): BoothRecordingState {
    const c = cur.controller;
    const info = cur.info;
    const terminal = info !== null && isTerminal(info.status);
    const raw = info ? statusName(info.status).replace(/^EGRESS_/, '') : 'STARTING';
    // The final status shows once the recording is listed (#finished): until then it is still ending.
    const status = (terminal && this.#current === cur ? 'ENDING' : raw === 'ACTIVE' && c?.paused ? 'PAUSED' : raw) as BoothStatusName;
    const paused = c?.pausedIntervals() ?? [];
    const file = info?.fileResults[0];
    // Recorded time: the file's duration once known; else up to the stop (or now), pauses left out.
    const endMs = cur.stopAtMs || Date.now();
    const pausedMs = paused.reduce((s, p) => s + Math.max(0, Math.min(p.to.getTime(), endMs) - Math.max(p.from.getTime(), cur.activeAtMs)), 0);
    const fileMs = terminal ? Number(file?.duration ?? 0n) / 1e6 : 0;
    const level = c?.audioLevel() ?? null;
    const recording = status === 'ACTIVE' || status === 'PAUSED';
    return {
      egressId: cur.egressId,
      status,
      source: cur.source,
      startedAtMs: c?.recordingStartedAtMs ?? 0,
      elapsedMs: fileMs > 0 ? fileMs : cur.activeAtMs === 0 ? 0 : Math.max(0, endMs - cur.activeAtMs - pausedMs),
      bytes: Number(file?.size ?? 0n) || cur.bytes,
      audio: level && recording ? (status === 'PAUSED' ? { peak: 0, rms: 0 } : { peak: level.peak, rms: level.rms }) : null,
      phase: cur.phase,
      upload: cur.upload,
      details: info?.details ?? '',
      error: info?.error ?? '',
      location: file?.location ?? '',
      paused: paused.map((p) => ({ from: p.from.toISOString(), to: p.to.toISOString() })),
    };
  }

  #emitState(): void {
    this.emit('event', { type: 'state', state: this.state() });
  }
}
