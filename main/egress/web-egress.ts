import { EventEmitter } from 'node:events';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { audioEncoderDelayUs, buildLaunchArgs, parseFragmentMessage, parseImageMessage, type OutputPipelinePlan } from '../../gst/output-pipeline.js';
import { fragmentedMp4DurationNs, truncateFragmentsAfter, truncateToCompleteFragments } from '../../gst/fmp4-duration.js';
import { containerDurationNs, unfinishedDurationNs } from '../../gst/container-duration.js';
import { GstProcess, PipelineFrozenError } from '../../gst/gst-process.js';
import { MediaTransport, nowUs, type TransportStats } from '../../gst/media-transport.js';
import { AudioGapFiller } from '../../gst/audio-gaps.js';
import type { AudioLevel } from '../../gst/audio-level.js';
import { EgressError, errDuplicateIdentity, errGstDied, errPipelineFrozen, errRoomConnectionFailed, toEgressError } from '../contracts/errors.js';
import type { PipelinePlan, TemplateSourcePlan } from '../contracts/pipeline.js';
import { CaptureIngest } from '../capture/capture-ingest.js';
import type { CaptureHost, PageSignal } from '../capture/capture-host.js';
import type { CaptureClock } from '../capture/clock.js';
import { logger } from '../log.js';
import { classifyRoomEnd, type RoomEndCause } from './room-end.js';
import { redactPageUrl, resolveTemplateUrl, type RecorderCredentials } from './template-source.js';
import { dirOf, Manifest, manifestRequired, sinkUploadsManifest, type UploadManager } from '../upload/index.js';
import { isTerminal, statusName } from './status.js';
import { applyStatus, audioEncodingOf, containerOf, describeExit, videoEncodingOf, type StatusFields } from './controller-common.js';
import { SegmentOutput } from '../output/segment-output.js';
import { ImageOutput } from '../output/image-output.js';
import { StreamOutput } from '../output/stream-output.js';
import { WebSocketAudioOutput } from '../output/websocket-output.js';
import { validateStreamUrl } from '../request/urls.js';
import { StreamInfo_Status } from '@livekit/protocol';
import { pageEncodeOptions, type VideoEncodePath } from './video-path.js';
import { spsProfile } from '../../gst/h264-annexb.js';

/**
 * Runs one page egress — a web page (web egress) or a room template (room composite, v2 template
 * source): a capture host renders the page, the in-page script streams timestamped frames and PCM
 * to our loopback ingest, the transport feeds them to one GStreamer child that writes the file.
 * Owns every process of the egress and drives the status machine; a failure of any part ends this
 * egress only, with a FAILED status and whatever was recorded still delivered.
 *
 * A template always gates the recording on its START_RECORDING signal; its END_RECORDING means its
 * room connection ended, and the server is asked why (room-end.ts): a closed room completes, a lost
 * connection fails with the partial file delivered, a duplicate recorder identity exits silently.
 */

const log = logger('egress');

/** How long a stop waits for media captured before the stop instant to arrive. */
const STOP_DRAIN_MS = 2000;
/** How long a closed capture connection waits for the host to say what died before it fails the egress itself. */
const CAUSE_GRACE_MS = 500;
/** How long a killed egress's pipeline may take to finish its file before it is killed too. */
const KILL_EOS_MS = 2000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WebEgressDeps {
  readonly host: CaptureHost;
  /** x264 threads (config video_encoder_threads; 0 = auto). */
  readonly encoderThreads: number;
  /** Where the video is encoded (egress/video-path.ts); default x264. */
  readonly videoPath?: VideoEncodePath;
  /** Uploads of this egress (primary storage, backup, local storage), see uploads.ts. */
  readonly uploads: UploadManager;
  /** Uploads of the segments output (its own resolved storage); default: `uploads`. */
  readonly segmentUploads?: UploadManager;
  /** Uploads of each image output by its id (its own resolved storage); default: `uploads`. */
  readonly imageUploads?: ReadonlyMap<string, UploadManager>;
  /** Config max_upload_queue (minutes): bounds segment/image upload queues. Default 60. */
  readonly maxUploadQueueMin?: number;
  /** EOS watchdog (the original's 30 s). */
  readonly eosTimeoutMs?: number;
  /** API key/secret for the recorder token and for asking the server why a room ended. */
  readonly credentials?: RecorderCredentials;
  /** Why a template's room connection ended (default: ask livekit-server, room-end.ts). */
  readonly classifyRoomEnd?: (source: TemplateSourcePlan) => Promise<RoomEndCause>;
}

export interface WebEgressEvents {
  update: [EgressInfo];
  /**
   * The source is up: the page loaded, or the room joined. Session limits count from here, as the
   * original's handler runs its timer only once its source exists.
   */
  sourceReady: [];
  /** Once a second while recording: time since ACTIVE and bytes written to the output file so far. */
  progress: [{ elapsedMs: number; bytes: number }];
  /** While the finished file is stored: bytes taken by the storage so far (local storage: at the end). */
  upload: [{ sentBytes: number; totalBytes: number }];
}

/** Why an egress ends, as `details: End reason: <reason>` reports it. */
export type EndReason = 'StopEgress API' | 'All streams stopped' | 'Source closed' | 'Process killed' | 'Session limit reached' | 'CPU exhausted' | 'Failure';

export class WebEgressController extends EventEmitter<WebEgressEvents> {
  readonly info: EgressInfo;
  readonly #ingest: CaptureIngest;
  #gst: GstProcess | null = null;
  #transport: MediaTransport | null = null;
  #stopRequested: { reason: EndReason; atUs: number } | null = null;
  #failure: EgressError | null = null;
  #failureReason: EndReason = 'Failure';
  #failedAtUs: number | null = null;
  /** When the template's room connection was lost while its client is getting it back (else null). */
  #roomLostAtUs: number | null = null;
  /** Where the file ends when the room was lost for good: the instant it was lost (file time cut). */
  #cutAtUs: number | null = null;
  /** The muxer did not finish the file (pipeline died or froze): its duration is read from the file. */
  #fileUnfinished = false;
  /** Killed by the worker (CPU, memory, shutdown): the pipeline gets KILL_EOS_MS to finish, not 30 s. */
  #killed = false;
  /** The page's capture connection closed. */
  #captureGone = false;
  /** Clocks the capture stamped its first video frame and audio chunk on (for the manifest). */
  #videoClock: CaptureClock | undefined;
  #audioClock: CaptureClock | undefined;
  /** The audio encoder delay the transport cancels (µs); null without an audio encoder. */
  #audioEncoderDelayUs: number | null = null;
  #recordingStartUs: number | null = null;
  #pendingStartUs: number | null = null;
  #wakeStop: (() => void) | null = null;
  #done: Promise<EgressInfo> | null = null;
  #progressTimer: NodeJS.Timeout | null = null;
  #silentExit = false;
  #pipelinePlaying = false;
  #segments: SegmentOutput | null = null;
  #images: ImageOutput[] = [];
  #stream: StreamOutput | null = null;
  /** WebSocket output (raw PCM, no GStreamer pipeline at all). */
  #websocket: WebSocketAudioOutput | null = null;
  #fileDelivered = false;
  /** The page's encoder's own counters (in-browser encode path): frames dropped before encoding, repeats. */
  #pageEncodeStats = { dropped: 0, repeated: 0 };
  #profileLogged = false;

  constructor(
    readonly plan: PipelinePlan,
    info: EgressInfo,
    private readonly deps: WebEgressDeps,
  ) {
    super();
    this.info = info;
    this.#ingest = new CaptureIngest(deps.host.ingestConnections);
  }

  /** Process ids of this egress (browser + GStreamer), for CPU accounting. */
  pids(): number[] {
    const pids = [...this.deps.host.pids()];
    if (this.#gst?.pid) pids.push(this.#gst.pid);
    if (this.#stream) pids.push(...this.#stream.pids());
    return pids;
  }

  /**
   * True when the egress ended because another participant took the recorder's identity: the
   * original then exits silently — no further status update, nothing uploaded.
   */
  get silentExit(): boolean {
    return this.#silentExit;
  }

  /** Counters of the media transport (frames in/repeated/dropped, bytes), once it exists. */
  transportStats(): Readonly<TransportStats> | null {
    const stats = this.#transport?.stats;
    if (!stats) return null;
    // Frames the page's encoder dropped never reached the transport: they count as dropped too.
    return { ...stats, videoFramesDropped: stats.videoFramesDropped + this.#pageEncodeStats.dropped };
  }

  /** Where this egress's video is encoded. */
  get videoPath(): VideoEncodePath {
    return this.#browserEncode ? 'browser' : 'x264';
  }

  get #browserEncode(): boolean {
    return this.deps.videoPath === 'browser' && this.plan.videoEnabled && !this.#websocket;
  }

  /**
   * When the recording started (wall clock, ms), null before: the file's time 0. ACTIVE may be
   * reported before it (the pipeline plays first) or after it (a slow start), so a UI counts from here.
   */
  get recordingStartedAtMs(): number | null {
    return this.#recordingStartUs === null ? null : this.#recordingStartUs / 1000;
  }

  /** Peak/RMS of the page's audio now (null before the pipeline runs or without audio). */
  audioLevel(): AudioLevel | null {
    return this.plan.audioEnabled && this.#transport ? this.#transport.audioLevel : null;
  }

  /** A small JPEG of the page being recorded (preview); null when there is no page to show. */
  async snapshot(width = 320): Promise<Buffer | null> {
    if (isTerminal(this.info.status) || !this.plan.videoEnabled) return null;
    return this.deps.host.snapshot(width).catch(() => null);
  }

  /** Runs the egress to its end; resolves with the final EgressInfo (never rejects). */
  run(): Promise<EgressInfo> {
    this.#done ??= this.#run();
    return this.#done;
  }

  /**
   * Asks the egress to finish: ENDING if recording, ABORTED if it never started.
   * Returns the info as it is right after the request.
   */
  stop(reason: EndReason = 'StopEgress API'): EgressInfo {
    if (isTerminal(this.info.status) || this.#stopRequested) return this.info;
    this.#stopRequested = { reason, atUs: nowUs() };
    // A session limit ends without an ENDING update and finishes as LIMIT_REACHED.
    if (this.info.status === EgressStatus.EGRESS_ACTIVE && reason !== 'Session limit reached') {
      this.#setStatus(EgressStatus.EGRESS_ENDING, { details: `End reason: ${reason}` });
    }
    this.#wakeStop?.();
    return this.info;
  }

  /**
   * Pauses the recording (beyond the original, which cannot): from now on nothing is written and the
   * file's timeline stands still; resume() goes on in the same file. Only while ACTIVE; the status
   * stays ACTIVE and its details say since when it is paused.
   */
  pause(): boolean {
    if (this.info.status !== EgressStatus.EGRESS_ACTIVE || this.#stopRequested || !this.#transport?.pause(nowUs())) return false;
    this.#stream?.setPaused(true);
    log.info(`paused [egress:${this.plan.egressId}]`);
    this.#updateDetails(`Paused since ${new Date().toISOString()}`);
    return true;
  }

  resume(): boolean {
    if (this.#stopRequested || !this.#transport?.resume(nowUs())) return false;
    this.#stream?.setPaused(false);
    log.info(`resumed [egress:${this.plan.egressId}]`);
    this.#updateDetails('');
    return true;
  }

  get paused(): boolean {
    return this.#transport?.paused ?? false;
  }

  /** Paused intervals so far, wall clock (an open one ends now). */
  pausedIntervals(): { from: Date; to: Date }[] {
    const toWall = (us: number): Date => new Date(us / 1000);
    return (this.#transport?.pauses ?? []).map((p) => ({ from: toWall(p.fromUs), to: toWall(p.toUs ?? nowUs()) }));
  }

  /**
   * Ends the egress as FAILED with `error` (CPU/OOM kill, shutdown): what was recorded is still
   * finalised and delivered.
   */
  kill(error: EgressError): void {
    this.#killed = true;
    this.#fail(error, 'Process killed');
    this.stop('Process killed');
    // A stop already under way (a CPU drain before this kill) may be waiting for EOS from the very
    // pipeline that is stuck: it gets KILL_EOS_MS more, then the pipeline is killed.
    setTimeout(() => void this.#gst?.kill(), KILL_EOS_MS).unref();
  }

  #fail(err: unknown, reason: EndReason = 'Failure'): void {
    if (this.#failure) return;
    this.#failure = toEgressError(err);
    this.#failureReason = reason;
    // What was recorded ends here: a dead page or pipeline sends nothing more, and the transport must
    // not pad the file with its last frame while the egress winds down.
    // A dead page is noticed a moment after its last frame (more under load): the media ends there.
    this.#failedAtUs = Math.min(nowUs(), this.#transport?.aliveUntilUs ?? Infinity);
    this.#transport?.setStop(Math.min(this.#failedAtUs, this.#stopRequested?.atUs ?? Infinity));
    log.error(`egress failed: ${this.#failure.message} [egress:${this.plan.egressId}]`);
    this.#wakeStop?.();
  }

  async #run(): Promise<EgressInfo> {
    const { plan } = this;
    const file = plan.file;
    try {
      if (!file && !plan.segments && !plan.images?.length && !plan.stream) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'request has missing or invalid field: output');
      const source = plan.source;
      if (source.kind !== 'web' && source.kind !== 'template') throw new EgressError('E_INTERNAL', 'internal', `${source.kind} egress has no page`);
      const pageUrl = source.kind === 'web' ? source.url : await resolveTemplateUrl(source, plan.egressId, this.#credentials());
      log.info(`loading ${redactPageUrl(pageUrl)} [egress:${plan.egressId}]`);
      await mkdir(plan.tmpDir, { recursive: true });
      if (file) await mkdir(dirname(file.localFilepath), { recursive: true });
      if (plan.segments) {
        const segments = new SegmentOutput(plan.segments, (this.deps.segmentUploads ?? this.deps.uploads).sink('segments'), {
          egressId: plan.egressId,
          maxUploadQueueMin: this.deps.maxUploadQueueMin ?? 60,
          onError: (err) => this.#fail(err),
          frameNs: BigInt(Math.round(1e9 / plan.encoding.framerate)),
        });
        await segments.prepare();
        this.#segments = segments;
      }
      if (plan.stream?.protocol === 'rtmp' || plan.stream?.protocol === 'srt') {
        const stream = new StreamOutput(plan.stream, plan.egressId, this.info.streamResults);
        stream.on('changed', () => this.#onStreamChanged());
        this.#stream = stream;
      }
      const wsUrl = plan.stream?.protocol === 'websocket' ? plan.stream.urls[0] : undefined;
      if (wsUrl) {
        // The egress dials before the page loads (the original dials while building the pipeline).
        const ws = new WebSocketAudioOutput(wsUrl, this.info.streamResults, (err) => this.#fail(err));
        this.#websocket = ws;
        await ws.connect();
      }
      for (const img of plan.images ?? []) {
        const out = new ImageOutput(img, (this.deps.imageUploads?.get(img.id) ?? this.deps.uploads).sink(img.id), {
          maxUploadQueueMin: this.deps.maxUploadQueueMin ?? 60,
          onError: (err) => this.#fail(err),
        });
        await out.prepare();
        this.#images.push(out);
      }
      const ingestUrl = await this.#ingest.listen();
      const host = this.deps.host;
      host.on('died', (err) => this.#fail(err));
      host.on('templateError', (err) => this.#fail(err));
      host.on('signal', (signal, atUs) => this.#onSignal(signal, atUs));
      // GStreamer starts while the page loads (it takes 30–130 ms to be ready, the page longer): a
      // request's time to its first frame is the longer of the two, not their sum. Whatever happens
      // to the page, the pipeline is awaited before going on, so #finish always finds it (and its
      // transport, whose timers must end with it).
      const pipeline = this.#websocket ? null : this.#startPipeline().then((t) => (this.#transport = t));
      pipeline?.catch(() => undefined);
      try {
        await host.open(pageUrl, { watchTemplateErrors: plan.source.kind === 'template' });
      } finally {
        await pipeline?.catch(() => undefined);
      }
      this.emit('sourceReady');
      if (this.#stopRequested || this.#failure) return await this.#finish();

      const transport = pipeline ? await pipeline : new MediaTransport({ video: null, audio: this.#websocket?.write ?? null, framerate: plan.encoding.framerate });
      this.#transport = transport;
      // Every buffer moves onto the egress clock here; the transport sees one clock only.
      this.#ingest.on('video', (f) => {
        this.#videoClock ??= f.clock;
        transport.pushVideo({ ...f, ptsUs: host.toEgressClock(f.ptsUs, f.clock) });
      });
      this.#ingest.on('encoded', (v) => {
        this.#videoClock ??= v.clock;
        if (!this.#profileLogged && v.key) {
          this.#profileLogged = true;
          const p = spsProfile(v.data);
          if (p) log.info(`in-page encoder: H.264 ${p.name} (profile_idc ${p.profileIdc}, constraints 0x${p.constraints.toString(16)}, level ${p.levelIdc / 10}) [egress:${plan.egressId}]`);
        }
        transport.pushEncodedVideo({ ...v, ptsUs: host.toEgressClock(v.ptsUs, v.clock) });
      });
      const audioIn = new AudioGapFiller((a) => transport.pushAudio(a));
      this.#ingest.on('audio', (a) => {
        this.#audioClock ??= a.clock;
        audioIn.write({ ...a, ptsUs: host.toEgressClock(a.ptsUs, a.clock) });
      });
      const awaitSignal = this.#awaitsStartSignal();
      if (this.#pendingStartUs !== null) this.#startRecording(this.#pendingStartUs);
      this.#ingest.on('control', (m) => {
        if (m.type === 'stats') this.#pageEncodeStats = { dropped: m.dropped, repeated: m.repeated };
        else if (m.type === 'error') this.#fail(new EgressError('E_CAPTURE', 'internal', `capture failed: ${m.message}`));
      });
      this.#ingest.on('disconnected', () => {
        this.#captureGone = true;
        if (this.#stopRequested || this.#failure) return;
        // The media ends now; the cause (a crashed renderer, a dead browser) is usually reported a
        // moment later and names what died better than the socket can.
        this.#transport?.setStop(nowUs());
        setTimeout(() => {
          if (!this.#stopRequested) this.#fail(new EgressError('E_CAPTURE', 'internal', 'capture stopped unexpectedly: the page closed its capture connection'));
        }, CAUSE_GRACE_MS);
      });
      // With await_start_signal the capture runs from page load but nothing is kept before
      // START_RECORDING: the recording then starts exactly at the signal, with no start-up gap.
      await host.startCapture({
        ingestUrl,
        video: plan.videoEnabled,
        audio: plan.audioEnabled,
        // A template plays the room's WebRTC tracks (see CaptureStartOptions).
        audioAtRenderTime: plan.source.kind === 'template',
        ...(this.#browserEncode ? { encode: pageEncodeOptions(plan.encoding) } : {}),
      });
      // Without a start signal the recording starts once the host reports the capture settled
      // (media flowing, viewport at its final size).
      if (!awaitSignal) this.#startRecording(nowUs());
      await new Promise<void>((resolveWait) => {
        this.#wakeStop = resolveWait;
        if (this.#stopRequested || this.#failure) resolveWait();
      });
      return await this.#finish();
    } catch (err) {
      this.#fail(err);
      return await this.#finish();
    }
  }

  /** Starts the GStreamer child that encodes every output but the WebSocket; returns the transport into it. */
  async #startPipeline(): Promise<MediaTransport> {
    const { plan } = this;
    const file = plan.file;
    const gstPlan: OutputPipelinePlan = {
      encodedVideo: this.#browserEncode,
      video: plan.videoEnabled
        ? {
            ...videoEncodingOf(plan.encoding, this.deps.encoderThreads),
            // HLS: a GOP of exactly one segment (no scene cuts), so every segment starts on a
            // keyframe at its boundary; splitmuxsink also requests the keyframe there.
            keyFrameIntervalS: plan.encoding.keyFrameIntervalS || (plan.segments?.segmentDurationS ?? 0),
            ...(plan.segments ? { vbvBufferMs: Math.min(plan.segments.segmentDurationS * 1000, 10_000) } : {}),
            cbr: plan.stream?.protocol === 'rtmp',
          }
        : null,
      audio: plan.audioEnabled ? audioEncodingOf(plan.encoding) : null,
      file: file ? { container: containerOf(file.fileType), location: file.localFilepath } : null,
      segments: this.#segments ? { locationPattern: this.#segments.locationPattern, segmentDurationS: plan.segments?.segmentDurationS ?? 4 } : null,
      stream: this.#stream ? { format: this.#stream.format } : null,
      images: this.#images.map((i) => ({ name: i.sinkName, locationPattern: i.locationPattern, intervalS: i.plan.captureIntervalS, width: i.plan.width, height: i.plan.height })),
    };
    this.#audioEncoderDelayUs = gstPlan.audio ? audioEncoderDelayUs(gstPlan.audio) : null;
    const gst = await GstProcess.start({ args: buildLaunchArgs(gstPlan), video: plan.videoEnabled, audio: plan.audioEnabled, streamOut: this.#stream !== null });
    this.#gst = gst;
    if (this.#stream && gst.streamOutput) {
      this.#stream.attach(gst.streamOutput);
      this.#stream.start();
    }
    gst.on('log', (line) => {
      if (line.startsWith('@')) return;
      if (line.startsWith('Got message')) {
        const fragment = this.#segments ? parseFragmentMessage(line) : null;
        if (fragment) this.#segments?.onFragment(fragment);
        const image = this.#images.length > 0 ? parseImageMessage(line) : null;
        if (image) this.#images.find((i) => i.sinkName === image.sink)?.onImage(image);
      } else log.debug(`gst: ${line}`);
    });
    gst.on('died', (info) => this.#fail(errGstDied(describeExit(info))));
    gst.on('playing', () => {
      this.#pipelinePlaying = true;
      this.#maybeActive();
    });
    return new MediaTransport({
      video: gst.videoInput,
      audio: gst.audioInput,
      framerate: plan.encoding.framerate,
      alignStartToFrames: true,
      ...(this.#audioEncoderDelayUs !== null ? { audioEncoderDelayUs: this.#audioEncoderDelayUs } : {}),
      ...(this.#browserEncode ? { requestKeyframe: () => this.#ingest.requestKeyframe() } : {}),
    });
  }

  /** Web pages start at once unless asked to wait; templates always wait. */
  #awaitsStartSignal(): boolean {
    return this.plan.source.kind === 'template' || (this.plan.source.kind === 'web' && this.plan.source.awaitStartSignal);
  }

  #credentials(): RecorderCredentials {
    return this.deps.credentials ?? { apiKey: '', apiSecret: '' };
  }

  #onSignal(signal: PageSignal, atUs: number): void {
    if (signal === 'START_RECORDING' && this.#awaitsStartSignal()) {
      this.#startRecording(atUs);
    } else if (signal === 'END_RECORDING') {
      if (this.plan.source.kind === 'template') void this.#onRoomEnded(this.plan.source, atUs);
      else this.stop('Source closed');
    } else if (signal === 'ROOM_SIGNAL_RECONNECTING' && this.plan.source.kind === 'template') {
      // Only the signal connection is being retried: media may still flow, and is recorded, or the
      // server may be gone (the page then says ROOM_RECONNECTING once no media arrived for half a
      // second). Until that is known the media waits in the transport, so a lost room's outputs end
      // here and a live one's lose nothing. Live streams do not wait.
      this.#roomLostAtUs ??= atUs;
      if (!this.plan.stream) this.#transport?.defer();
      log.info(`room signal connection lost; the page is reconnecting [egress:${this.plan.egressId}]`);
    } else if (signal === 'ROOM_RECONNECTING' && this.plan.source.kind === 'template') {
      this.#roomLostAtUs ??= atUs;
      // The media connection is being retried (or stalled during a signal reconnect): recorded
      // outputs are held from the loss on (what waited past it is dropped). The page
      // shows a frozen picture and plays silence meanwhile, and none of that is written. If the room
      // comes back, the gap is filled as any other (videorate repeats the picture, audiorate writes
      // silence); if not, every output (file of any container, HLS segments, images) ends here. A
      // live stream is not held: its viewers already get the page as it is, and a burst of the gap
      // at the return would break its pacing.
      if (!this.plan.stream) this.#transport?.hold(this.#roomLostAtUs);
      log.info(`room connection lost; the page is reconnecting [egress:${this.plan.egressId}]`);
    } else if (signal === 'ROOM_RECONNECTED' && this.plan.source.kind === 'template') {
      if (this.#roomLostAtUs !== null) log.info(`room connection back after ${((atUs - this.#roomLostAtUs) / 1e6).toFixed(1)} s [egress:${this.plan.egressId}]`);
      this.#roomLostAtUs = null;
      this.#transport?.release();
    }
  }

  /** A template's room connection ended: finish according to why (see room-end.ts). */
  async #onRoomEnded(source: TemplateSourcePlan, atUs: number): Promise<void> {
    if (this.#stopRequested || isTerminal(this.info.status)) return;
    // The recording ends where the room connection ended, whatever the server says afterwards:
    // nothing after that instant is kept while the server is asked why.
    this.#stopRequested = { reason: 'Source closed', atUs };
    this.#transport?.setStop(atUs);
    const classify = this.deps.classifyRoomEnd ?? ((s: TemplateSourcePlan) => classifyRoomEnd(s.wsUrl ?? '', this.#credentials(), s.roomName, this.plan.egressId));
    const cause = await classify(source).catch(() => 'room_closed' as const);
    log.info(`room connection ended: ${cause} [egress:${this.plan.egressId}]`);
    if (cause === 'duplicate_identity') {
      this.#silentExit = true;
      this.#fail(errDuplicateIdentity());
    } else if (cause === 'connection_lost') {
      // Its client tried to get the room back and gave up: what the page showed meanwhile (the
      // last pictures, frozen; silence) is not part of the recording.
      if (this.#roomLostAtUs !== null && this.#roomLostAtUs < atUs) this.#cutAtUs = this.#roomLostAtUs;
      this.#fail(errRoomConnectionFailed());
    } else if (this.info.status === EgressStatus.EGRESS_ACTIVE) {
      this.#setStatus(EgressStatus.EGRESS_ENDING, { details: 'End reason: Source closed' });
    }
    this.#wakeStop?.();
  }

  #startRecording(atUs: number): void {
    if (this.#recordingStartUs !== null || this.#stopRequested) return;
    if (!this.#transport) {
      // The signal came before the pipeline was up: apply it as soon as it is.
      this.#pendingStartUs = atUs;
      return;
    }
    atUs = this.#transport.start(atUs);
    this.#recordingStartUs = atUs;
    this.#segments?.setStart(atUs);
    for (const i of this.#images) i.setStart(atUs);
    log.info(`recording started [egress:${this.plan.egressId}]`);
    this.#maybeActive();
  }

  /**
   * ACTIVE once the pipeline plays (a WebSocket output has none to preroll) and the recording has
   * started — whichever comes last; a page waiting for its start signal stays STARTING, as in the
   * original. The update carries the recording start as every output's started_at (the original's
   * start-time update), so a client timing the recording counts from the instant it began.
   */
  #maybeActive(): void {
    if (this.info.status !== EgressStatus.EGRESS_STARTING || this.#stopRequested) return;
    if (this.#recordingStartUs === null || !(this.#pipelinePlaying || (this.#websocket && !this.#gst))) return;
    const startedAt = BigInt(Math.round(this.#recordingStartUs * 1000));
    for (const f of this.info.fileResults) f.startedAt = startedAt;
    for (const r of this.info.segmentResults) r.startedAt = startedAt;
    for (const r of this.info.imageResults) r.startedAt = startedAt;
    this.#websocket?.markStarted(startedAt);
    this.#setStatus(EgressStatus.EGRESS_ACTIVE);
    const t0 = Date.now();
    const local = this.plan.file?.localFilepath;
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
    // A room lost for good ends the recording where it was lost (#cutAtUs), whatever came after.
    const stopAtUs = Math.min(this.#stopRequested?.atUs ?? Infinity, this.#failedAtUs ?? Infinity, this.#cutAtUs ?? Infinity, nowUs());
    // Let media captured up to the stop instant arrive (capture runs a little behind real time), then
    // stop the page and end the inputs so EOS reaches the muxer.
    const transport = this.#transport;
    if (transport && wasRecording && !this.#failure) {
      transport.setStop(stopAtUs);
      const deadline = Date.now() + STOP_DRAIN_MS;
      while (!transport.reachedStop() && Date.now() < deadline && !this.#failure) await sleep(20);
    }
    // With its connection gone there is no capture left to stop (and a dead page would not answer).
    if (!this.#captureGone) await this.deps.host.stopCapture().catch(() => undefined);
    if (this.#recordingStartUs !== null) {
      const endNs = BigInt(Math.max(0, Math.round((stopAtUs - this.#recordingStartUs) * 1000)));
      for (const i of this.#images) i.setEnd(endNs);
    }
    const inputsEndedAtMs = Date.now();
    this.#transport?.end(stopAtUs);
    let frozen = false;
    if (this.#gst) {
      try {
        // A killed egress ends now: what the muxer has not finished by then is cut at its last
        // complete fragment (#deliverFile), rather than holding the CPU or memory it was killed for.
        // An HLS output's last fragment closed after the inputs ended shows EOS went through the
        // pipeline, even when gst-launch then never sees it (see GstProcess.stop).
        const segments = this.#segments;
        const outputsFinished = segments ? () => (segments.closedAtMs ?? 0) >= inputsEndedAtMs : undefined;
        const gst = this.#gst;
        const exit = this.#killed ? await gst.stopOrKill(KILL_EOS_MS) : await gst.stop(this.deps.eosTimeoutMs ?? 30_000, { outputsFinished });
        if (gst.endedAfterOutputsFinished) log.warn(`the pipeline finished its outputs but never posted EOS: gst-launch ended [egress:${plan.egressId}]`);
        // Killed or crashed before EOS: the muxer never finished the file (read back from disk).
        this.#fileUnfinished = exit.code !== 0 || exit.signal !== null;
      } catch (err) {
        this.#fileUnfinished = true;
        if (err instanceof PipelineFrozenError) {
          frozen = true;
          this.#fail(errPipelineFrozen());
        } else this.#fail(err);
      }
    }
    await this.deps.host.close();
    await this.#ingest.close();
    if (frozen) log.warn(`pipeline frozen [egress:${plan.egressId}]`);

    const endedAtNs = BigInt(Math.round(stopAtUs * 1000));
    if (wasRecording && plan.file && !this.#silentExit) await this.#deliverFile(endedAtNs);
    if (this.#segments && wasRecording && !this.#silentExit) await this.#deliverSegments(stopAtUs);
    if (wasRecording && !this.#silentExit) await this.#deliverImages(endedAtNs);
    await this.#stream?.finish();
    // After the transport ended: everything up to the stop went out before the Close frame.
    await this.#websocket?.finish(endedAtNs, this.#failure);
    if (wasRecording && !this.#silentExit) await this.#uploadManifests(endedAtNs);

    const failure = this.#failure;
    const reason = this.#stopRequested?.reason;
    if (failure) {
      this.#setStatus(EgressStatus.EGRESS_FAILED, { error: failure.message, errorCode: failure.httpStatus, details: this.#endDetails(this.#failureReason) }, endedAtNs);
    } else if (!wasRecording) {
      const awaiting = this.#awaitsStartSignal();
      const error =
        reason === 'Session limit reached' ? 'Session limit reached before start signal' : awaiting ? 'Start signal not received' : 'Stop called before pipeline could start';
      this.#setStatus(EgressStatus.EGRESS_ABORTED, { error, errorCode: 412, details: `End reason: ${reason ?? 'Failure'}` }, endedAtNs);
    } else if (reason === 'Session limit reached') {
      this.#setStatus(EgressStatus.EGRESS_LIMIT_REACHED, { error: 'Session limit reached', errorCode: 413, details: this.#endDetails('Session limit reached') }, endedAtNs);
    } else {
      this.#setStatus(EgressStatus.EGRESS_COMPLETE, { details: this.#endDetails(reason ?? 'Source closed') }, endedAtNs);
    }
    // The temp dir goes unless it holds a recording that could not be stored anywhere (its path is
    // the reported location then).
    const keptLocally = this.info.fileResults.some((f) => f.location !== '' && f.location === plan.file?.localFilepath);
    await rm(keptLocally ? join(plan.tmpDir, 'chrome-profile') : plan.tmpDir, { recursive: true, force: true }).catch(() => undefined);
    return this.info;
  }

  /**
   * Delivers what was recorded, also after a failure: a killed GStreamer leaves a fragmented MP4 that
   * plays up to the last fragment, a crashed browser ends the inputs so the file is finalised. Upload
   * goes to the output's storage, falling back to `backup`; a file that could not be stored anywhere
   * stays on local disk and that path is reported as its location.
   */
  async #deliverFile(endedAtNs: bigint): Promise<void> {
    const file = this.plan.file;
    const result = this.info.fileResults[0];
    if (!file || !result) return;
    if (this.#fileUnfinished && file.fileType === 'mp4') {
      // A fragment written in part (the disk filled up, the muxer died) is cut off: it plays nothing
      // and decoders report errors on it.
      const cut = await truncateToCompleteFragments(file.localFilepath).catch(() => 0);
      if (cut > 0) log.warn(`cut ${cut} bytes of an incomplete last fragment [egress:${this.info.egressId}]`);
    }
    let size = 0;
    try {
      size = (await stat(file.localFilepath)).size;
    } catch {
      return;
    }
    const startNs = BigInt(Math.round((this.#recordingStartUs as number) * 1000));
    result.startedAt = startNs;
    result.endedAt = endedAtNs;
    // Paused time is not in the file.
    const pausedNs = BigInt(Math.round((this.#transport?.pausedUsBefore(Number(endedAtNs) / 1000) ?? 0) * 1000));
    result.duration = endedAtNs - startNs > pausedNs ? endedAtNs - startNs - pausedNs : 0n;
    if (this.#cutAtUs !== null && !this.#fileUnfinished && file.fileType === 'mp4' && this.#cutAtUs > (this.#recordingStartUs as number)) {
      // The room was lost for good at #cutAtUs: the file ends there (to the sample).
      const cutNs = BigInt(Math.round(this.#cutAtUs * 1000)) - startNs - pausedNs;
      const cut = await truncateFragmentsAfter(file.localFilepath, cutNs).catch(() => 0);
      const onDisk = cut > 0 ? await fragmentedMp4DurationNs(file.localFilepath).catch(() => null) : null;
      if (onDisk !== null && onDisk < result.duration) {
        log.info(`file ended where the room was lost: ${(Number(onDisk) / 1e9).toFixed(2)} s kept, ${cut} bytes of the reconnect attempts cut [egress:${this.info.egressId}]`);
        result.duration = onDisk;
        result.endedAt = startNs + onDisk;
        size = (await stat(file.localFilepath)).size;
      }
    }
    // A killed egress's muxer may finish in its short grace and still hold less than the wall clock
    // says: killed a moment after the start, its EOS can come before any sample reached the muxer,
    // and the file then has a header and no media (seen in a full test run: a memory kill 2.7 s after
    // the request).
    const readBack = this.#fileUnfinished || this.#killed;
    if (readBack || (this.#cutAtUs !== null && file.fileType === 'ogg')) {
      // What players will play is what reached the disk: up to the last complete fragment / page.
      // An Ogg file of a lost room ends where the transport held it and cannot be cut after the
      // fact: what it holds is its duration.
      const onDisk = readBack ? await unfinishedDurationNs(file.fileType, file.localFilepath) : await containerDurationNs(file.fileType, file.localFilepath);
      if (onDisk !== null && (onDisk < result.duration || !readBack)) {
        result.duration = onDisk;
        result.endedAt = startNs + onDisk;
      }
    }
    result.size = BigInt(size);
    const uploads = this.deps.uploads;
    const sink = uploads.sink('file');
    try {
      const out = await sink.upload(file.localFilepath, file.storageFilepath, file.fileType, {
        deleteAfterUpload: true,
        onProgress: (sentBytes, totalBytes) => this.emit('upload', { sentBytes, totalBytes }),
      });
      result.location = out.location;
      result.filename = out.storagePath;
    } catch (err) {
      result.location = file.localFilepath;
      this.info.backupStorageUsed = uploads.backupStorageUsed;
      this.#fail(err);
      return;
    }
    this.info.backupStorageUsed = uploads.backupStorageUsed;
    this.#fileDelivered = true;
  }

  /**
   * The manifest: one JSON listing the file, the playlist with its segments and the
   * images, uploaded after every output closed, once per output sink that keeps its manifest (or
   * every sink once backup storage was used) into that output's storage directory. Only for
   * recordings that ended normally, which includes a room connection lost after the recording
   * started.
   */
  async #uploadManifests(endedAtNs: bigint): Promise<void> {
    if (this.#failure && !this.#endedEarly()) return;
    const { plan } = this;
    const sinks: { disable: boolean; manager: UploadManager; sink: string; dir: string }[] = [];
    if (plan.file && this.#fileDelivered) sinks.push({ disable: plan.file.disableManifest, manager: this.deps.uploads, sink: 'file', dir: dirOf(plan.file.storageFilepath) });
    if (plan.segments && this.#segments) {
      sinks.push({ disable: plan.segments.disableManifest, manager: this.deps.segmentUploads ?? this.deps.uploads, sink: 'segments', dir: plan.segments.storageDir });
    }
    for (const img of this.#images) sinks.push({ disable: img.plan.disableManifest, manager: this.deps.imageUploads?.get(img.plan.id) ?? this.deps.uploads, sink: img.plan.id, dir: img.plan.storageDir });
    if (sinks.length === 0) return;
    const backupConfigured = sinks.some((s) => s.manager.backupConfigured);
    if (!manifestRequired(backupConfigured, sinks.map((s) => s.disable))) return;
    const manifest = new Manifest({
      egressId: plan.egressId,
      roomId: plan.roomId,
      roomName: plan.roomName,
      url: plan.source.kind === 'web' ? plan.source.url : '',
      startedAt: BigInt(Math.round((this.#recordingStartUs as number) * 1000)),
      endedAt: endedAtNs,
      paused: this.pausedIntervals(),
      timing: {
        ...this.deps.host.timing(),
        videoClock: this.#videoClock,
        audioClock: this.#audioClock,
        ...(this.#audioEncoderDelayUs !== null ? { audioEncoderDelayUs: this.#audioEncoderDelayUs } : {}),
      },
    });
    const file = this.info.fileResults[0];
    if (file && this.#fileDelivered) manifest.addFile(file.filename, file.location);
    if (this.#segments) {
      const stored = this.#segments.stored;
      const playlist = manifest.addPlaylist(stored.playlistLocation);
      for (const s of stored.segments) playlist.addSegment(s.filename, s.location);
    }
    for (const img of this.#images) for (const s of img.stored) manifest.addImage(s.filename, s.timestamp, s.location);
    for (const s of sinks) {
      if (!sinkUploadsManifest(s.disable, s.manager.backupStorageUsed)) continue;
      try {
        const m = await manifest.upload(s.manager.sink(s.sink), s.dir, plan.tmpDir);
        this.info.manifestLocation ||= m.location;
      } catch (err) {
        log.warn(`manifest upload failed: ${(err as Error).message} [egress:${plan.egressId}]`);
      }
    }
    this.info.backupStorageUsed = sinks.some((s) => s.manager.backupStorageUsed);
  }

  /** Uploads what is left of the HLS output, closes both playlists and fills SegmentsInfo. */
  async #deliverSegments(stopAtUs: number): Promise<void> {
    const segments = this.#segments;
    if (!segments) return;
    const endRunningTimeNs = BigInt(Math.max(0, Math.round((stopAtUs - (this.#recordingStartUs as number)) * 1000)));
    try {
      await segments.finish(endRunningTimeNs);
    } catch (err) {
      this.#fail(err);
    }
    const result = this.info.segmentResults[0];
    if (result) segments.fillInfo(result);
  }

  /**
   * UpdateStream: adds and removes URLs of the stream output while recording.
   * Invalid or unknown URLs are reported (errors joined by newlines) after the valid changes apply.
   */
  updateStream(addUrls: readonly string[], removeUrls: readonly string[]): EgressInfo {
    const stream = this.#stream;
    if (!stream || !this.plan.stream) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'UpdateStream called on non-streaming egress');
    const errors: EgressError[] = [];
    for (const raw of addUrls) {
      try {
        stream.add(validateStreamUrl(raw, this.plan.stream.protocol, { twitchTemplate: this.plan.stream.twitchTemplate }));
      } catch (err) {
        errors.push(toEgressError(err));
      }
    }
    for (const raw of removeUrls) {
      if (!stream.remove(raw)) errors.push(new EgressError('E_NOT_FOUND', 'not_found', `stream ${raw} not found`));
    }
    this.emit('update', this.info.clone());
    const first = errors[0];
    if (first) throw new EgressError(first.code, first.psrpcCode, errors.map((e) => e.message).join('\n'));
    return this.info.clone();
  }

  /**
   * A URL started, failed or was removed. The egress goes on while any output remains; when the
   * stream was the last one, a failure fails the egress and a removal completes it.
   */
  #onStreamChanged(): void {
    const stream = this.#stream;
    if (!stream || isTerminal(this.info.status)) return;
    this.emit('update', this.info.clone());
    if (stream.activeCount > 0 || this.plan.file || this.plan.segments || (this.plan.images?.length ?? 0) > 0) return;
    const failed = this.info.streamResults.filter((s) => s.status === StreamInfo_Status.FAILED);
    const finished = this.info.streamResults.some((s) => s.status === StreamInfo_Status.FINISHED);
    if (!finished && failed.length > 0) this.#fail(new EgressError('E_STREAM', 'unavailable', failed[failed.length - 1]?.error || 'stream failed', { destination: true }));
    else this.stop('All streams stopped');
  }

  /** Waits for the last images' uploads and fills ImagesInfo. */
  async #deliverImages(endedAtNs: bigint): Promise<void> {
    for (const [k, out] of this.#images.entries()) {
      try {
        await out.finish();
      } catch (err) {
        this.#fail(err);
      }
      const result = this.info.imageResults[k];
      if (result) out.fillInfo(result, endedAtNs);
    }
  }

  #endedEarly(): boolean {
    return this.#failure?.code === 'E_ROOM' && this.#failure.psrpcCode === 'unavailable';
  }

  /** `End reason: X`, then the paused intervals when there were any (wall clock, ISO 8601). */
  #endDetails(reason: string): string {
    const paused = this.pausedIntervals().map((p) => `${p.from.toISOString()}/${p.to.toISOString()}`);
    return `End reason: ${reason}${paused.length ? `; paused ${paused.join(', ')}` : ''}`;
  }

  #updateDetails(details: string): void {
    this.info.details = details;
    this.info.updatedAt = BigInt(Date.now()) * 1_000_000n;
    this.emit('update', this.info.clone());
  }

  #setStatus(status: EgressStatus, fields: StatusFields = {}, endedAtNs?: bigint): void {
    if (!applyStatus(this.info, status, fields, endedAtNs)) return;
    log.info(`status ${statusName(status)}${fields.error ? `: ${fields.error}` : ''} [egress:${this.plan.egressId}]`);
    this.emit('update', this.info.clone());
  }
}

