import { EventEmitter } from 'node:events';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DisconnectReason, RoomEvent, TrackKind } from '@livekit/rtc-node';
import { EgressInfo, EgressStatus, StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import type { Registry } from 'prom-client';
import { audioEncoderDelayUs, buildLaunchArgs, type OutputPipelinePlan } from '../../gst/output-pipeline.js';
import { GstProcess, PipelineFrozenError } from '../../gst/gst-process.js';
import { MediaTransport, nowUs } from '../../gst/media-transport.js';
import type { ServiceConfig } from '../config/index.js';
import { EgressError, errDuplicateIdentity, errGstDied, errInvalidField, errInvalidInput, errPipelineFrozen, errRoomConnectionFailed, toEgressError } from '../contracts/errors.js';
import type { FileType, PipelinePlan, SdkSourcePlan } from '../contracts/pipeline.js';
import { buildPassthroughArgs, passthroughCodecOf, passthroughContainerOf } from '../../gst/passthrough-pipeline.js';
import { EncodedTrackPage, type EncodedTrackOptions } from '../sdk/encoded-track.js';
import { PassthroughVideoWriter } from '../sdk/passthrough-writer.js';
import { isSdkSource } from './source-kind.js';
import { logger } from '../log.js';
import type { StartEgressEnvelope } from '../request/index.js';
import { MediaTimeline } from '../sdk/media-timeline.js';
import { RoomSource } from '../sdk/room-source.js';
import { findTrack, ParticipantSelection, RoomAudioSelection, TrackCompositeSelection, TrackEgressSelection, trackNames, type FoundTrack, type TrackSelection } from '../sdk/track-selection.js';
import { TrackSlots } from '../sdk/track-slots.js';
import { AudioMixer } from '../sdk/audio-mixer.js';
import { MediaSelection } from '../sdk/media-selection.js';
import { WebSocketPcmSink } from '../sdk/websocket-pcm.js';
import { dirOf, Manifest, manifestRequired, sinkUploadsManifest, type UploadManager } from '../upload/index.js';
import { initialEgressInfo } from './info.js';
import { isTerminal, statusName } from './status.js';
import { applyStatus, audioEncodingOf, containerOf, describeExit, videoEncodingOf, type StatusFields } from './controller-common.js';
import { recorderToken, type RecorderCredentials } from './template-source.js';
import { createEgressUploads } from './uploads.js';
import type { EndReason, WebEgressEvents } from './web-egress.js';

/**
 * Runs one SDK-source egress (participant, track composite, track, v2 media, audio-only room): no page. The
 * recorder joins the room itself with @livekit/rtc-node (room-source.ts), subscribes to the tracks
 * the request names (track-selection.ts) and feeds their decoded frames and PCM, stamped on the
 * egress clock and kept continuous (media-timeline.ts), into the same transport and GStreamer
 * pipeline as a page capture. A VIDEO track egress (v1 track, v2 PASSTHROUGH) is the exception:
 * it is written without transcoding from the track's encoded frames, which rtc-node does not hand
 * out, so a headless page reads them (encoded-track.ts, passthrough-writer.ts).
 *
 * Status: STARTING until the first media arrives and reaches the file, then
 * ACTIVE; the source ending (participant left, tracks gone, room deleted) completes it; a source
 * that never published ends ABORTED; a lost room connection fails it with the partial file
 * delivered; another participant taking the recorder's identity exits silently.
 */

const log = logger('egress');

const STOP_DRAIN_MS = 2000;
/** Past the stop, missing audio/video is filled after this long (what was in flight had its chance). */
const STOP_FILL_AFTER_US = 500_000;

/** `<name>.ogg` → `<name>.webm` once the track turns out to be video (the name got the audio default). */
function replaceExtension(path: string, ext: string): string {
  return path.replace(/\.ogg$/, `.${ext}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SdkEgressDeps {
  readonly encoderThreads: number;
  readonly uploads: UploadManager;
  readonly credentials: RecorderCredentials;
  readonly eosTimeoutMs?: number;
  /** Chromium settings for the page that reads a video track's encoded frames. */
  readonly browser: EncodedTrackOptions['host'];
}


export class SdkEgressController extends EventEmitter<WebEgressEvents> {
  readonly info: EgressInfo;
  #gst: GstProcess | null = null;
  #transport: MediaTransport | null = null;
  #timeline: MediaTimeline | null = null;
  #room: RoomSource | null = null;
  #slots: TrackSlots | null = null;
  #selection: TrackSelection | null = null;
  #stopRequested: { reason: EndReason; atUs: number } | null = null;
  #failure: EgressError | null = null;
  #failureReason: EndReason = 'Failure';
  #recordingStartUs: number | null = null;
  #playing = false;
  #wakeStop: (() => void) | null = null;
  #done: Promise<EgressInfo> | null = null;
  #progressTimer: NodeJS.Timeout | null = null;
  #silentExit = false;
  /** When rtc-node began retrying the room connection (egress clock, µs); null while connected. */
  #roomLostAtUs: number | null = null;
  /** The source ended while the connection was retried; it ends the recording if the room never comes back. */
  #endWhileLost = false;
  /** Where the recording ends when that is not the stop request's time (the room was lost there). */
  #cutAtUs: number | null = null;
  #storagePath: string;
  #websocket: WebSocketPcmSink | null = null;
  #mixer: AudioMixer | null = null;
  #encodedPage: EncodedTrackPage | null = null;
  #passthrough: PassthroughVideoWriter | null = null;
  /** Container and local file once known (a video track egress writes WebM / MP4, not OGG). */
  #fileType: FileType;
  #localFilepath: string;

  constructor(
    readonly plan: PipelinePlan & { readonly source: SdkSourcePlan },
    info: EgressInfo,
    private readonly deps: SdkEgressDeps,
  ) {
    super();
    this.info = info;
    this.#storagePath = plan.file?.storageFilepath ?? '';
    this.#fileType = plan.file?.fileType ?? 'ogg';
    this.#localFilepath = plan.file?.localFilepath ?? '';
  }

  pids(): number[] {
    return [process.pid, ...(this.#gst?.pid ? [this.#gst.pid] : []), ...(this.#encodedPage?.pids() ?? [])];
  }

  get silentExit(): boolean {
    return this.#silentExit;
  }

  run(): Promise<EgressInfo> {
    this.#done ??= this.#run();
    return this.#done;
  }

  stop(reason: EndReason = 'StopEgress API'): EgressInfo {
    if (isTerminal(this.info.status) || this.#stopRequested) return this.info;
    this.#stopRequested = { reason, atUs: nowUs() };
    if (this.info.status === EgressStatus.EGRESS_ACTIVE && reason !== 'Session limit reached') {
      this.#setStatus(EgressStatus.EGRESS_ENDING, { details: `End reason: ${reason}` });
    }
    this.#wakeStop?.();
    return this.info;
  }

  /** Sources without a page write no RTMP/SRT stream (refused up front); a track's WebSocket has no URLs to change. */
  updateStream(_addUrls: readonly string[], _removeUrls: readonly string[]): EgressInfo {
    throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'UpdateStream called on non-streaming egress');
  }

  kill(error: EgressError): void {
    this.#fail(error, 'Process killed');
    this.stop('Process killed');
  }

  #fail(err: unknown, reason: EndReason = 'Failure'): void {
    if (this.#failure) return;
    this.#failure = toEgressError(err);
    this.#failureReason = reason;
    log.error(`egress failed: ${this.#failure.message} [egress:${this.plan.egressId}]`);
    this.#wakeStop?.();
  }

  async #run(): Promise<EgressInfo> {
    const { plan } = this;
    try {
      const file = plan.file;
      if (!file && plan.stream?.protocol !== 'websocket') throw errInvalidField('output');
      const source = plan.source;
      if (!source.wsUrl) throw errInvalidField('ws_url');
      let token = source.token ?? '';
      if (token === '') token = await recorderToken(this.deps.credentials, source.roomName, plan.egressId);
      await mkdir(plan.tmpDir, { recursive: true });
      if (file) await mkdir(dirname(file.localFilepath), { recursive: true });

      const wsUrl = plan.stream?.protocol === 'websocket' ? plan.stream.urls[0] : undefined;
      const waitStop = new Promise<void>((resolveWait) => {
        this.#wakeStop = resolveWait;
        if (this.#stopRequested || this.#failure) resolveWait();
      });
      // Track egress to a file: the track's kind decides the pipeline (audio → OGG here; video →
      // its own container, written without transcoding), so the room comes first.
      let room: RoomSource | null = null;
      if (source.kind === 'track' && !wsUrl) {
        room = await this.#joinRoom(source.wsUrl, token);
        const finding = findTrack(room, source.trackId);
        finding.catch(() => undefined);
        const hit = await Promise.race([finding, waitStop.then(() => null)]);
        if (hit && hit.pub.kind === TrackKind.KIND_VIDEO) {
          await this.#recordEncodedVideo(hit, source.wsUrl, token, waitStop);
          return await this.#finish();
        }
      }
      let sink: Pick<MediaTransport, 'start' | 'pushAudio' | 'pushVideo'>;
      if (wsUrl) {
        const ws = new WebSocketPcmSink(wsUrl.url);
        this.#websocket = ws;
        ws.on('failed', (err) => this.#fail(err));
        await ws.connect();
        this.info.streamResults.push(new StreamInfo({ url: wsUrl.redactedUrl, status: StreamInfo_Status.ACTIVE }));
        // Nothing to preroll: ACTIVE as soon as the first audio goes out.
        this.#playing = true;
        sink = ws;
      } else {
        sink = await this.#startPipeline();
      }
      const timeline = new MediaTimeline({
        transport: sink,
        video: plan.videoEnabled ? { width: plan.encoding.width, height: plan.encoding.height } : null,
        audio: plan.audioEnabled,
        onStart: (atUs) => {
          if (this.#stopRequested) return;
          this.#recordingStartUs = atUs;
          log.info(`recording started [egress:${plan.egressId}]`);
          this.#maybeActive();
        },
      });
      this.#timeline = timeline;

      room ??= await this.#joinRoom(source.wsUrl, token);
      const slots = new TrackSlots(room, timeline, { video: plan.videoEnabled, audio: plan.audioEnabled });
      this.#slots = slots;
      const events = { onSourceEnded: () => this.#sourceEnded(), onError: (e: Error) => this.#fail(e) };
      let selection: TrackSelection;
      switch (source.kind) {
        case 'participant':
          selection = new ParticipantSelection(room, slots, source, events);
          break;
        case 'track_composite':
          selection = new TrackCompositeSelection(room, slots, source, events);
          break;
        case 'track':
          selection = new TrackEgressSelection(room, slots, source, events, wsUrl !== undefined, (muted) => this.#websocket?.sendMuted(muted));
          break;
        case 'room_audio': {
          const mixer = new AudioMixer((c) => timeline.pushAudio(c));
          this.#mixer = mixer;
          selection = new RoomAudioSelection(room, mixer, source);
          break;
        }
        case 'media': {
          // Routed audio goes through the same mixer as the audio-only room composite's.
          const mixer = plan.audioEnabled ? new AudioMixer((c) => timeline.pushAudio(c)) : null;
          this.#mixer = mixer;
          selection = new MediaSelection(room, slots, mixer, source);
          break;
        }
      }
      this.#selection = selection;
      await Promise.race([selection.begin(), waitStop]);
      const names = new Map(selection.names ?? []);
      if (selection.publisherIdentity) names.set('{publisher_identity}', selection.publisherIdentity);
      this.#resolveNames(names);
      await waitStop;
      return await this.#finish();
    } catch (err) {
      this.#fail(err);
      return await this.#finish();
    }
  }

  async #joinRoom(wsUrl: string, token: string): Promise<RoomSource> {
    const room = new RoomSource({ wsUrl, token, egressId: this.plan.egressId });
    this.#room = room;
    room.room.on(RoomEvent.Disconnected, (reason) => this.#onDisconnected(reason));
    room.room.on(RoomEvent.Reconnecting, () => this.#onReconnecting());
    room.room.on(RoomEvent.Reconnected, () => this.#onReconnected());
    await room.connect();
    this.emit('sourceReady');
    return room;
  }

  /**
   * A video track, written as published: rtc-node found it, then hands the room
   * over to a headless page that posts the track's encoded frames (encoded-track.ts); they go,
   * keyframe-gated, into WebM (VP8 / VP9) or MP4 (H264) without a decode or an encode.
   */
  async #recordEncodedVideo(hit: FoundTrack, wsUrl: string, token: string, waitStop: Promise<void>): Promise<void> {
    const { plan } = this;
    const file = plan.file;
    if (!file) throw errInvalidField('output');
    const mime = hit.pub.mimeType ?? '';
    const codec = passthroughCodecOf(mime);
    if (!codec) throw errInvalidInput(`${mime} is not yet supported`);
    this.#resolveNames(trackNames(hit));
    const container = passthroughContainerOf(codec);
    this.#fileType = container;
    this.#localFilepath = replaceExtension(file.localFilepath, container);
    this.#storagePath = replaceExtension(this.#storagePath, container);
    const result = this.info.fileResults[0];
    if (result) result.filename = replaceExtension(result.filename, container);
    // One recorder identity in the room at a time: rtc-node leaves before the page joins.
    await this.#room?.disconnect();
    if (this.#stopRequested || this.#failure) return;

    const gst = await this.#startGst(buildPassthroughArgs(codec, this.#localFilepath), true, false);
    const input = gst.videoInput;
    if (!input) throw errGstDied('no video input');
    const page = new EncodedTrackPage({
      wsUrl,
      token,
      trackSid: hit.pub.sid ?? '',
      egressId: plan.egressId,
      workDir: plan.tmpDir,
      host: this.deps.browser,
    });
    this.#encodedPage = page;
    const writer = new PassthroughVideoWriter(input, codec, {
      onStart: (arrivalUs) => {
        if (this.#stopRequested) return;
        this.#recordingStartUs = page.toEgressUs(arrivalUs);
        log.info(`recording started (${mime}, no transcode) [egress:${plan.egressId}]`);
        this.#maybeActive();
      },
      onKeyframeNeeded: () => page.requestKeyframe(),
    });
    this.#passthrough = writer;
    page.on('frame', (f) => writer.push(f));
    page.on('died', (err) => this.#fail(err));
    page.on('control', (m) => {
      // Closing the page at the stop disconnects it: that is ours, not a failure.
      if (this.#stopRequested || this.#failure) return;
      switch (m.type) {
        case 'subscribed':
          log.info(`track page subscribed to the ${m.kind} track${m.via ? ` (${m.via})` : ''} [egress:${plan.egressId}]`);
          break;
        case 'ended':
          log.info(`track ${hit.pub.sid ?? ''} ended (${m.reason}) [egress:${plan.egressId}]`);
          this.stop('Source closed');
          break;
        case 'disconnected':
          if (m.reason === 'DUPLICATE_IDENTITY') {
            this.#silentExit = true;
            this.#fail(errDuplicateIdentity());
          } else if (m.reason === 'ROOM_DELETED' || m.reason === 'ROOM_CLOSED') this.stop('Source closed');
          else this.#fail(errRoomConnectionFailed());
          break;
        case 'error':
          this.#fail(errRoomConnectionFailed());
          log.warn(`track page: ${m.message} [egress:${plan.egressId}]`);
          break;
        default:
          break;
      }
    });
    await page.open();
    await waitStop;
  }

  /** The file pipeline: gst-launch fed by the transport (as for a page capture). */
  async #startPipeline(): Promise<MediaTransport> {
    const { plan } = this;
    const file = plan.file;
    if (!file) throw errInvalidField('output');
    const gstPlan: OutputPipelinePlan = {
      video: plan.videoEnabled ? videoEncodingOf(plan.encoding, this.deps.encoderThreads) : null,
      audio: plan.audioEnabled ? audioEncodingOf(plan.encoding) : null,
      file: { container: containerOf(file.fileType), location: file.localFilepath },
    };
    const gst = await this.#startGst(buildLaunchArgs(gstPlan), plan.videoEnabled, plan.audioEnabled);
    const transport = new MediaTransport({
      video: gst.videoInput,
      audio: gst.audioInput,
      framerate: plan.encoding.framerate,
      ...(gstPlan.audio ? { audioEncoderDelayUs: audioEncoderDelayUs(gstPlan.audio) } : {}),
    });
    this.#transport = transport;
    return transport;
  }

  /** `{publisher_identity}`, `{track_type}`, `{track_source}` are known once the tracks are. */
  #resolveNames(names: ReadonlyMap<string, string>): void {
    let path = this.#storagePath;
    for (const [k, v] of names) path = path.split(k).join(v);
    if (path === this.#storagePath) return;
    this.#storagePath = path;
    const f = this.info.fileResults[0];
    if (f && this.plan.file) f.filename = join(this.plan.file.storage.prefix, path);
  }

  /**
   * The participant left / the tracks ended. While the room connection is being retried this is
   * rtc-node dropping every remote participant before it rejoins (a full reconnect), not the source
   * ending: it is decided once the connection is back or lost for good.
   */
  #sourceEnded(): void {
    if (this.#roomLostAtUs !== null) {
      this.#endWhileLost = true;
      return;
    }
    this.stop('Source closed');
  }

  /**
   * rtc-node lost the room's connection and retries it. Nothing live arrives meanwhile, so the
   * output is held at this instant: no repeated picture or silence is written past it, and if the
   * room never comes back the recording ends here (the original keeps the retries' frozen tail).
   */
  #onReconnecting(): void {
    if (this.#room?.disconnecting || isTerminal(this.info.status) || this.#roomLostAtUs !== null) return;
    const atUs = nowUs();
    this.#roomLostAtUs = atUs;
    this.#timeline?.hold(atUs);
    this.#transport?.hold(atUs);
    log.info(`room connection lost; reconnecting [egress:${this.plan.egressId}]`);
  }

  #onReconnected(): void {
    const lostAtUs = this.#roomLostAtUs;
    if (lostAtUs === null) return;
    log.info(`room connection back after ${((nowUs() - lostAtUs) / 1e6).toFixed(1)} s [egress:${this.plan.egressId}]`);
    this.#roomLostAtUs = null;
    if (this.#endWhileLost) {
      // The source was dropped during the reconnect: the recording ends where the room was lost
      // (completing it as when the participant leaves), not after a held gap.
      this.#cutAtUs = lostAtUs;
      this.stop('Source closed');
      return;
    }
    this.#timeline?.release();
    this.#transport?.release();
  }

  #onDisconnected(reason: DisconnectReason): void {
    if (this.#room?.disconnecting || isTerminal(this.info.status)) return;
    log.info(`room connection ended: ${DisconnectReason[reason] ?? reason} [egress:${this.plan.egressId}]`);
    if (reason === DisconnectReason.DUPLICATE_IDENTITY) {
      this.#silentExit = true;
      this.#fail(errDuplicateIdentity());
    } else if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED) {
      this.stop('Source closed');
    } else {
      // Lost for good (rtc-node gave up reconnecting): FAILED, like the original when its SDK's
      // reconnect attempts run out; the recording ends where the connection was lost.
      if (this.#roomLostAtUs !== null) this.#cutAtUs = this.#roomLostAtUs;
      this.#fail(errRoomConnectionFailed());
    }
  }

  /** Starts the pipeline; its death fails the egress, and its PLAYING counts towards ACTIVE. */
  async #startGst(args: readonly string[], video: boolean, audio: boolean): Promise<GstProcess> {
    const gst = await GstProcess.start({ args, video, audio });
    this.#gst = gst;
    gst.on('log', (line) => {
      if (!line.startsWith('@')) log.debug(`gst: ${line}`);
    });
    gst.on('died', (info) => this.#fail(errGstDied(describeExit(info))));
    gst.on('playing', () => {
      this.#playing = true;
      this.#maybeActive();
    });
    return gst;
  }

  #maybeActive(): void {
    if (!this.#playing || this.#recordingStartUs === null || this.info.status !== EgressStatus.EGRESS_STARTING || this.#stopRequested) return;
    const startedAt = BigInt(Math.round(this.#recordingStartUs * 1000));
    for (const f of this.info.fileResults) f.startedAt = startedAt;
    for (const st of this.info.streamResults) st.startedAt = startedAt;
    this.#setStatus(EgressStatus.EGRESS_ACTIVE);
    const t0 = Date.now();
    const local = this.plan.file ? this.#localFilepath : undefined;
    this.#progressTimer = setInterval(() => {
      if (!local) return;
      void stat(local).then(
        (s) => this.emit('progress', { elapsedMs: Date.now() - t0, bytes: s.size }),
        () => undefined,
      );
    }, 1000);
  }

  async #finish(): Promise<EgressInfo> {
    if (this.#progressTimer) clearInterval(this.#progressTimer);
    const { plan } = this;
    const wasRecording = this.#recordingStartUs !== null;
    const stopAtUs = this.#cutAtUs ?? this.#stopRequested?.atUs ?? nowUs();
    const transport = this.#transport;
    const timeline = this.#timeline;
    this.#selection?.close();
    if (transport && timeline && wasRecording && !this.#failure) {
      transport.setStop(stopAtUs);
      const deadline = Date.now() + STOP_DRAIN_MS;
      while (!transport.reachedStop() && Date.now() < deadline && !this.#failure) {
        this.#mixer?.flushTo(Math.min(stopAtUs, nowUs() - 20_000));
        if (nowUs() > stopAtUs + STOP_FILL_AFTER_US) timeline.fillTo(stopAtUs);
        await sleep(20);
      }
    }
    if (transport && timeline && wasRecording && this.#failure && this.#cutAtUs !== null) {
      // Lost room: audio is written up to the loss (what was received, then silence) so both
      // streams end there; nothing past it (the transport is held at it).
      transport.setStop(stopAtUs);
      this.#mixer?.flushTo(stopAtUs);
      timeline.fillTo(stopAtUs);
    }
    // Frames up to the stop are in; later ones are not written (the page closes with the pipeline's input).
    this.#passthrough?.close();
    if (this.#passthrough) {
      // What a viewer of the file would need to explain a damaged stretch: where the source's
      // keyframes were, and what was not written.
      const st = this.#passthrough.stats;
      log.info(
        `passthrough video: ${st.written} frames written (${st.reordered} put back in RTP order), keyframes at ${st.keyframeTimesS.map((t) => t.toFixed(2)).join(' ') || 'none'} s; dropped ${st.droppedBeforeKeyframe} before the first keyframe, ${st.droppedLate} too late and ${st.droppedAwaitingKeyframe} after them until a keyframe, ${st.droppedDuplicates} duplicates, ${st.droppedFiller} SFU filler [egress:${this.plan.egressId}]`,
      );
    }
    await this.#encodedPage?.close();
    await this.#slots?.close();
    this.#mixer?.close();
    if (this.#websocket && timeline && wasRecording && (!this.#failure || this.#cutAtUs !== null)) timeline.fillTo(stopAtUs);
    timeline?.close();
    transport?.end(stopAtUs);
    await this.#websocket?.close();
    let frozen = false;
    if (this.#gst) {
      try {
        await this.#gst.stop(this.deps.eosTimeoutMs ?? 30_000);
      } catch (err) {
        if (err instanceof PipelineFrozenError) {
          frozen = true;
          this.#fail(errPipelineFrozen());
        } else this.#fail(err);
      }
    }
    await this.#room?.disconnect();
    if (frozen) log.warn(`pipeline frozen [egress:${plan.egressId}]`);

    const endedAtNs = BigInt(Math.round(stopAtUs * 1000));
    if (wasRecording && plan.file && !this.#silentExit) await this.#deliverFile(endedAtNs);

    const failure = this.#failure;
    const reason = this.#stopRequested?.reason;
    for (const st of this.info.streamResults) {
      if (!wasRecording) continue;
      st.endedAt = endedAtNs;
      st.duration = endedAtNs > st.startedAt ? endedAtNs - st.startedAt : 0n;
      st.status = failure ? StreamInfo_Status.FAILED : StreamInfo_Status.FINISHED;
      if (failure) st.error = failure.message;
    }
    if (failure) {
      this.#setStatus(EgressStatus.EGRESS_FAILED, { error: failure.message, errorCode: failure.httpStatus, details: `End reason: ${this.#failureReason}` }, endedAtNs);
    } else if (!wasRecording) {
      const error = reason === 'Session limit reached' ? 'Session limit reached before start signal' : 'Start signal not received';
      this.#setStatus(EgressStatus.EGRESS_ABORTED, { error, errorCode: 412, details: `End reason: ${reason ?? 'Failure'}` }, endedAtNs);
    } else if (reason === 'Session limit reached') {
      this.#setStatus(EgressStatus.EGRESS_LIMIT_REACHED, { error: 'Session limit reached', errorCode: 413, details: 'End reason: Session limit reached' }, endedAtNs);
    } else {
      this.#setStatus(EgressStatus.EGRESS_COMPLETE, { details: `End reason: ${reason ?? 'Source closed'}` }, endedAtNs);
    }
    const keptLocally = this.info.fileResults.some((f) => f.location !== '' && f.location === this.#localFilepath);
    if (!keptLocally) await rm(plan.tmpDir, { recursive: true, force: true }).catch(() => undefined);
    return this.info;
  }

  /** Delivers what was recorded, also after a failure (as the page path does, web-egress.ts). */
  async #deliverFile(endedAtNs: bigint): Promise<void> {
    const file = this.plan.file;
    const result = this.info.fileResults[0];
    if (!file || !result) return;
    let size = 0;
    try {
      size = (await stat(this.#localFilepath)).size;
    } catch {
      return;
    }
    const startNs = BigInt(Math.round((this.#recordingStartUs as number) * 1000));
    result.startedAt = startNs;
    result.endedAt = endedAtNs;
    result.duration = endedAtNs > startNs ? endedAtNs - startNs : 0n;
    result.size = BigInt(size);
    const uploads = this.deps.uploads;
    const sink = uploads.sink('file');
    try {
      const out = await sink.upload(this.#localFilepath, this.#storagePath, this.#fileType, { deleteAfterUpload: true });
      result.location = out.location;
      result.filename = out.storagePath;
    } catch (err) {
      result.location = this.#localFilepath;
      this.info.backupStorageUsed = uploads.backupStorageUsed;
      this.#fail(err);
      return;
    }
    this.info.backupStorageUsed = uploads.backupStorageUsed;
    const endedEarly = this.#failure?.code === 'E_ROOM' && this.#failure.psrpcCode === 'unavailable';
    if ((this.#failure && !endedEarly) || !manifestRequired(uploads.backupConfigured, [file.disableManifest])) return;
    if (!sinkUploadsManifest(file.disableManifest, uploads.backupStorageUsed)) return;
    const manifest = new Manifest({ egressId: this.plan.egressId, roomId: this.plan.roomId, roomName: this.plan.roomName, url: '', startedAt: startNs, endedAt: endedAtNs });
    manifest.addFile(result.filename, result.location);
    try {
      const m = await manifest.upload(sink, dirOf(this.#storagePath), this.plan.tmpDir);
      this.info.manifestLocation ||= m.location;
      this.info.backupStorageUsed = uploads.backupStorageUsed;
    } catch (err) {
      log.warn(`manifest upload failed: ${(err as Error).message} [egress:${this.plan.egressId}]`);
    }
  }

  #setStatus(status: EgressStatus, fields: StatusFields = {}, endedAtNs?: bigint): void {
    if (!applyStatus(this.info, status, fields, endedAtNs)) return;
    log.info(`status ${statusName(status)}${fields.error ? `: ${fields.error}` : ''} [egress:${this.plan.egressId}]`);
    this.emit('update', this.info.clone());
  }
}


export interface CreateSdkEgressOptions {
  readonly localBaseDir?: string;
  readonly registry?: Registry;
  readonly now?: Date;
}

/** Assembles an SDK egress from its validated plan (see create-egress.ts). */
export function createSdkEgress(plan: PipelinePlan, envelope: StartEgressEnvelope, config: ServiceConfig, opts: CreateSdkEgressOptions = {}): SdkEgressController {
  const source = plan.source;
  if (!isSdkSource(source)) throw new EgressError('E_INTERNAL', 'internal', `${source.kind} is not an SDK source`);
  const uploads = createEgressUploads(plan, config, {
    ...(opts.localBaseDir ? { localBaseDir: opts.localBaseDir } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
  return new SdkEgressController({ ...plan, source }, initialEgressInfo(plan, envelope, opts.now ?? new Date()), {
    encoderThreads: config.video_encoder_threads,
    uploads,
    credentials: { apiKey: config.api_key, apiSecret: config.api_secret },
    browser: {
      insecure: config.insecure,
      sandbox: config.enable_chrome_sandbox,
      extraFlags: Object.fromEntries(Object.entries(config.chrome_flags).map(([k, v]) => [k, v === null ? '' : String(v)])),
      ...(config.chrome_path ? { chromePath: config.chrome_path } : {}),
    },
  });
}
