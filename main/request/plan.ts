import path from 'node:path';
import {
  AudioChannel,
  AudioMixing,
  type AudioRoute,
  type MediaSource,
  ParticipantInfo_Kind,
  EncodedFileType,
  EncodingOptionsPreset,
  ImageCodec,
  ImageFileSuffix,
  SegmentedFileSuffix,
  StreamProtocol,
  type EgressInfo,
  type EncodedFileOutput,
  type EncodingOptions,
  type ImageOutput,
  type SegmentedFileOutput,
  type StartEgressRequest,
  type StorageConfig as ProtoStorageConfig,
  StreamOutput,
  type WebEgressRequest,
  type RoomCompositeEgressRequest,
  type TrackCompositeEgressRequest,
} from '@livekit/protocol';
import { errInvalidField, errInvalidInput } from '../contracts/errors.js';
import type {
  AudioRoutePlan,
  FileOutputPlan,
  MediaSourcePlan,
  ParticipantKindName,
  FileType,
  ImageOutputPlan,
  ImageSuffix,
  PipelinePlan,
  RequestType,
  SegmentsOutputPlan,
  SourcePlan,
  StoragePlan,
  StreamOutputPlan,
  StreamProtocolKind,
} from '../contracts/pipeline.js';
import type { ServiceConfig } from '../config/load.js';
import { resolveStoragePlan, type ServiceStorageSettings, type StorageProviderLike } from '../upload/resolve.js';
import {
  applyAdvanced,
  applyPreset,
  audioCodecOf,
  defaultEncoding,
  errNoCompatibleCodec,
  negotiateCodecs,
  OPUS_FREQUENCY,
  STREAM_KEYFRAME_INTERVAL_S,
  type EncodedOutputType,
  type EncodingState,
} from './encoding.js';
import {
  checkFileRetry,
  checkSegmentsRetry,
  cleanPath,
  EXTENSION_OF,
  filenameContext,
  fileStoragePath,
  imageNaming,
  localFilePath,
  segmentNaming,
  type FilenameContext,
} from './filename.js';
import { protocolFromUrl, validateStreamUrl } from './urls.js';
import { twitchTemplateOf } from './twitch-ingest.js';

/**
 * Request validation: turns a StartEgress request plus the service
 * config into an immutable PipelinePlan, or throws an EgressError with the original's text.
 * Runs before anything is spawned.
 */

/** The request oneof of rpc.StartEgressRequest, shaped like EgressInfo.request. */
export type EgressRequest = EgressInfo['request'];

/** What the service receives (rpc.StartEgressRequest). */
export interface StartEgressEnvelope {
  readonly egressId: string;
  readonly request: EgressRequest;
  readonly roomName?: string | undefined;
  readonly roomId?: string | undefined;
  readonly retryCount?: number | undefined;
  /** Recorder token (room-based requests); empty → minted from api_key/api_secret. */
  readonly token?: string | undefined;
  /** LiveKit URL (room-based requests); empty → config ws_url. */
  readonly wsUrl?: string | undefined;
}

export interface BuildPlanOptions {
  /** Twitch ingest template; default: twitchTemplateOf(config) (config, cached ingest list, auto-routing ingest). */
  readonly twitchTemplate?: string | undefined;
}

/** The service-config pieces resolveStoragePlan needs. */
export function storageSettingsOf(config: ServiceConfig): ServiceStorageSettings {
  return {
    storage: config.storage,
    s3AssumeRoleKey: config.s3_assume_role_key,
    s3AssumeRoleSecret: config.s3_assume_role_secret,
    s3AssumeRoleArn: config.s3_assume_role_arn,
    s3AssumeRoleExternalId: config.s3_assume_role_external_id,
    disallowLocalStorage: config.disallow_local_storage,
  };
}

interface FileDraft {
  /** null = DEFAULT_FILETYPE, resolved after codec negotiation */
  fileType: Exclude<FileType, 'webm'> | null;
  cleaned: string;
  disableManifest: boolean;
  storage: StoragePlan;
}

interface SegmentsDraft {
  plan: Omit<SegmentsOutputPlan, 'segmentDurationS'>;
  segmentDurationS: number;
}

interface Draft {
  readonly egressId: string;
  readonly config: ServiceConfig;
  readonly storageSettings: ServiceStorageSettings;
  readonly opts: BuildPlanOptions;
  readonly tmpDir: string;
  readonly retryCount: number;
  readonly now: Date;
  requestType: RequestType;
  source: SourcePlan | null;
  /** true for SDK-source requests we validate but cannot run yet */
  sdkSource: boolean;
  audioEnabled: boolean;
  videoEnabled: boolean;
  enc: EncodingState;
  roomName: string;
  roomId: string;
  ctx: FilenameContext;
  file: FileDraft | null;
  stream: StreamOutputPlan | null;
  websocket: StreamOutputPlan | null;
  segments: SegmentsDraft | null;
  images: ImageOutputPlan[];
  outputCount: number;
}

function isHttpUrl(raw: string): boolean {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(raw);
  if (!m) return false;
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return false;
  try {
    new URL(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a request and builds its plan. Throws EgressError with the original's texts
 * (`request has missing or invalid field: <field>`, `invalid url …`, `format … incompatible with
 * codec …`, `output configuration does not support retry` (412), …).
 */
export function buildPipelinePlan(
  req: StartEgressEnvelope,
  config: ServiceConfig,
  now: Date,
  opts: BuildPlanOptions = {},
): PipelinePlan {
  if (!req.egressId) throw errInvalidField('egressID');
  const d: Draft = {
    egressId: req.egressId,
    config,
    storageSettings: storageSettingsOf(config),
    opts,
    tmpDir: path.join(config.tmp_dir, req.egressId),
    retryCount: req.retryCount ?? 0,
    now,
    requestType: 'web',
    source: null,
    sdkSource: false,
    audioEnabled: false,
    videoEnabled: false,
    enc: defaultEncoding(),
    roomName: req.roomName ?? '',
    roomId: req.roomId ?? '',
    ctx: filenameContext({ now }),
    file: null,
    stream: null,
    websocket: null,
    segments: null,
    images: [],
    outputCount: 0,
  };

  let connectionInfoRequired = true;
  const r = req.request;
  switch (r.case) {
    case 'web': {
      d.requestType = 'web';
      connectionInfoRequired = false;
      applyWebSource(d, r.value.url, r.value.audioOnly, r.value.videoOnly, r.value.awaitStartSignal);
      applyOptions(d, r.value.options);
      applyV1Outputs(d, r.value);
      break;
    }
    case 'roomComposite': {
      d.requestType = 'room_composite';
      d.roomName = r.value.roomName;
      applyTemplateSource(d, r.value.layout, r.value.customBaseUrl, r.value.audioOnly, r.value.videoOnly, r.value.audioMixing);
      applyOptions(d, r.value.options);
      applyV1Outputs(d, r.value);
      break;
    }
    case 'egress': {
      const v2 = r.value;
      if (v2.roomName !== '') d.roomName = v2.roomName;
      applyOptions(d, v2.encoding);
      if (d.enc.passthrough && v2.source.case !== 'media') throw errInvalidField('passthrough source');
      switch (v2.source.case) {
        case 'web': {
          const w = v2.source.value;
          d.requestType = 'web';
          connectionInfoRequired = false;
          applyWebSource(d, w.url, w.audioOnly, w.videoOnly, w.awaitStartSignal);
          break;
        }
        case 'template': {
          const t = v2.source.value;
          d.requestType = 'template';
          applyTemplateSource(d, t.layout, t.customBaseUrl, t.audioOnly, t.videoOnly);
          break;
        }
        case 'media':
          // PASSTHROUGH is the old track egress on the v2 request.
          if (d.enc.passthrough) applyPassthrough(d, v2);
          else applyMediaSource(d, v2.source.value);
          break;
        default:
          throw errInvalidField('source');
      }
      if (!d.enc.passthrough) applyV2Outputs(d, v2);
      break;
    }
    case 'participant': {
      const p = r.value;
      d.requestType = 'participant';
      d.roomName = p.roomName;
      setRoom(d);
      if (p.identity === '') throw errInvalidField('identity');
      // Always audio + video: a participant without a camera still gets black video.
      d.audioEnabled = true;
      d.videoEnabled = true;
      d.sdkSource = true;
      d.source = { kind: 'participant', identity: p.identity, screenShare: p.screenShare, roomName: d.roomName };
      applyOptions(d, p.options);
      applyV1Outputs(d, { ...p, output: { case: undefined } });
      break;
    }
    case 'trackComposite': {
      const t = r.value;
      d.requestType = 'track_composite';
      d.roomName = t.roomName;
      setRoom(d);
      if (t.audioTrackId === '' && t.videoTrackId === '') throw errInvalidField('audio_track_id or video_track_id');
      d.audioEnabled = t.audioTrackId !== '';
      d.videoEnabled = t.videoTrackId !== '';
      d.sdkSource = true;
      d.source = { kind: 'track_composite', audioTrackId: t.audioTrackId, videoTrackId: t.videoTrackId, roomName: d.roomName };
      applyOptions(d, t.options);
      applyV1Outputs(d, t);
      break;
    }
    case 'track': {
      const t = r.value;
      d.requestType = 'track';
      d.roomName = t.roomName;
      setRoom(d);
      if (t.trackId === '') throw errInvalidField('track_id');
      d.sdkSource = true;
      d.source = { kind: 'track', trackId: t.trackId, roomName: d.roomName };
      // Known only once the track is: kind (audio here; video is refused when found), source, publisher.
      d.audioEnabled = true;
      d.videoEnabled = false;
      // The default name is `<track id>-<time>`.
      d.ctx = { ...d.ctx, identifier: t.trackId, replacements: new Map([...d.ctx.replacements, ['{track_id}', t.trackId]]) };
      if (t.output.case === 'file') {
        const f = t.output.value;
        addFile(d, EncodedFileType.OGG, f.filepath, f.disableManifest, f.output, undefined);
      } else if (t.output.case === 'websocketUrl') {
        addStream(d, new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls: [t.output.value] }), true);
      } else throw errInvalidField('output');
      break;
    }
    case 'replay':
      throw errInvalidInput('replay export is not yet supported');
    default:
      throw errInvalidField('request');
  }

  // the passthrough preset only exists for media (v2) and track requests
  if (d.enc.passthrough && !(r.case === 'egress' && r.value.source.case === 'media')) throw errInvalidField('preset');

  let token = '';
  let wsUrl = '';
  if (connectionInfoRequired) {
    if (req.token) token = req.token;
    else if (!(config.api_key !== '' && config.api_secret !== '' && d.roomName !== '')) {
      throw errInvalidField('token or api key/secret');
    }
    if (req.wsUrl) wsUrl = req.wsUrl;
    else if (config.ws_url !== '') wsUrl = config.ws_url;
    else throw errInvalidField('ws_url');
  }


  // codec negotiation over file, segments, stream, websocket
  const encoded: EncodedOutputType[] = [];
  if (d.file) encoded.push(d.file.fileType === null ? '' : EXT_TYPES[d.file.fileType]);
  if (d.segments) encoded.push('application/x-mpegurl');
  if (d.stream) encoded.push(d.stream.protocol === 'srt' ? 'srt' : 'rtmp');
  if (d.websocket) encoded.push('audio/x-raw');
  const choice = negotiateCodecs(encoded, d.audioEnabled, d.videoEnabled, d.enc.requestedAudio, d.enc.requestedVideo);

  const audioCodec = choice.audio ? audioCodecOf(choice.audio) : 'aac';
  const rawAudio = audioCodec === 'raw';
  const codec = rawAudio ? 'opus' : audioCodec;

  let file: FileOutputPlan | null = null;
  if (d.file) {
    const fileType: FileType = d.file.fileType ?? choice.defaultFileType ?? 'mp4';
    const storageFilepath = fileStoragePath(d.file.cleaned, EXTENSION_OF[fileType], d.ctx);
    file = {
      fileType,
      storageFilepath,
      localFilepath: localFilePath(d.tmpDir, storageFilepath),
      disableManifest: d.file.disableManifest,
      storage: d.file.storage,
    };
  }

  if (d.source === null) throw errInvalidField('source');
  const source: SourcePlan = d.source.kind === 'web' ? d.source : { ...d.source, roomName: d.roomName, token, wsUrl };

  const plan: PipelinePlan = {
    egressId: d.egressId,
    requestType: d.requestType,
    sourceKind: source.kind === 'web' || source.kind === 'template' ? 'web' : 'sdk',
    source,
    audioEnabled: d.audioEnabled,
    videoEnabled: d.videoEnabled,
    encoding: {
      width: d.enc.width,
      height: d.enc.height,
      depth: d.enc.depth,
      framerate: d.enc.framerate,
      audioCodec: codec,
      audioBitrateKbps: d.enc.audioBitrateKbps,
      audioFrequency: codec === 'opus' ? OPUS_FREQUENCY : d.enc.audioFrequency,
      videoProfile: d.enc.videoProfile,
      videoBitrateKbps: d.enc.videoBitrateKbps,
      keyFrameIntervalS: d.enc.keyFrameIntervalS,
      rawAudio,
    },
    file,
    stream: d.stream ?? d.websocket,
    segments: d.segments ? { ...d.segments.plan, segmentDurationS: d.segments.segmentDurationS } : null,
    images: d.images,
    tmpDir: d.tmpDir,
    roomName: d.roomName,
    roomId: d.roomId,
    retryCount: d.retryCount,
  };
  return deepFreeze(plan);
}

const EXT_TYPES: Readonly<Record<'mp4' | 'ogg' | 'mp3', EncodedOutputType>> = {
  mp4: 'video/mp4',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

function setRoom(d: Draft): void {
  d.ctx = filenameContext({ roomName: d.roomName, roomId: d.roomId, retryCount: d.retryCount, now: d.now });
}

function applyWebSource(d: Draft, url: string, audioOnly: boolean, videoOnly: boolean, awaitStartSignal: boolean): void {
  // web egress has no room
  d.roomName = '';
  d.roomId = '';
  setRoom(d);
  if (!isHttpUrl(url)) throw errInvalidField('web url');
  d.audioEnabled = !videoOnly;
  d.videoEnabled = !audioOnly;
  if (!d.audioEnabled && !d.videoEnabled) throw errInvalidField('audio_only and video_only');
  d.source = { kind: 'web', url, awaitStartSignal };
}

function applyTemplateSource(d: Draft, layout: string, customBaseUrl: string, audioOnly: boolean, videoOnly: boolean, mixing = AudioMixing.DEFAULT_MIXING): void {
  setRoom(d);
  d.sdkSource = audioOnly && layout === '' && customBaseUrl === '';
  const baseUrl = customBaseUrl !== '' ? customBaseUrl : d.config.template_base;
  if (!isHttpUrl(baseUrl)) throw errInvalidField('template base url');
  d.audioEnabled = !videoOnly;
  d.videoEnabled = !audioOnly;
  if (!d.audioEnabled && !d.videoEnabled) throw errInvalidField('audio_only and video_only');
  d.source = { kind: 'template', baseUrl, layout, roomName: d.roomName };
  // Audio only without a layout or custom page: the SDK source mixes the room's audio.
  if (d.sdkSource) {
    const m = mixing === AudioMixing.DUAL_CHANNEL_AGENT ? 'dual_channel_agent' : mixing === AudioMixing.DUAL_CHANNEL_ALTERNATE ? 'dual_channel_alternate' : 'default';
    d.source = { kind: 'room_audio', mixing: m, roomName: d.roomName };
  }
}

type OptionsOneof =
  | { case: 'preset'; value: EncodingOptionsPreset }
  | { case: 'advanced'; value: EncodingOptions }
  | { case: undefined; value?: undefined };

function applyOptions(d: Draft, o: OptionsOneof): void {
  if (o.case === 'preset') applyPreset(d.enc, o.value);
  else if (o.case === 'advanced') applyAdvanced(d.enc, o.value);
}

// ------------------------------------------------------------------------------------------------
// outputs

function resolveStorage(d: Draft, perOutput: StorageProviderLike, perRequest: StorageProviderLike): StoragePlan {
  return resolveStoragePlan(perOutput, perRequest, d.storageSettings);
}

function fileTypeOf(t: EncodedFileType): FileDraft['fileType'] {
  switch (t) {
    case EncodedFileType.MP4:
      return 'mp4';
    case EncodedFileType.OGG:
      return 'ogg';
    case EncodedFileType.MP3:
      return 'mp3';
    default:
      return null;
  }
}

function addFile(d: Draft, fileType: EncodedFileType, filepath: string, disableManifest: boolean, perOutput: StorageProviderLike, perRequest: StorageProviderLike): void {
  const storage = resolveStorage(d, perOutput, perRequest);
  const cleaned = cleanPath(filepath);
  checkFileRetry(cleaned, d.retryCount);
  d.file = { fileType: fileTypeOf(fileType), cleaned, disableManifest, storage };
  d.outputCount++;
}

function streamKind(s: StreamOutput, v2: boolean): StreamProtocolKind {
  switch (s.protocol) {
    case StreamProtocol.DEFAULT_PROTOCOL: {
      const first = s.urls[0];
      if (first === undefined) throw errInvalidField('stream protocol');
      const kind = protocolFromUrl(first);
      // v1 accepts ws:// in validation but cannot build it (`output type`): say so up front
      if (kind === 'websocket' && !v2) throw errInvalidField('output type');
      return kind;
    }
    case StreamProtocol.RTMP:
      return 'rtmp';
    case StreamProtocol.SRT:
      return 'srt';
    case StreamProtocol.WEBSOCKET:
      if (!v2) throw errInvalidField('output type');
      return 'websocket';
    default:
      throw errInvalidField('stream protocol');
  }
}

function addStream(d: Draft, s: StreamOutput, v2: boolean): StreamProtocolKind {
  const kind = streamKind(s, v2);
  // websocket is audio-only: drop video when the source has both
  if (kind === 'websocket' && d.audioEnabled && d.videoEnabled) d.videoEnabled = false;
  const twitchTemplate = d.opts.twitchTemplate ?? twitchTemplateOf(d.config);
  const urls = s.urls.map((u) => validateStreamUrl(u, kind, { twitchTemplate }));
  if (kind === 'websocket') {
    d.enc.requestedAudio = 'audio/x-raw';
    d.websocket = { protocol: kind, urls };
  } else {
    // RTMP and SRT force AAC + H264
    d.enc.requestedAudio = 'audio/aac';
    d.enc.requestedVideo = 'video/h264';
    d.stream = twitchTemplate === undefined ? { protocol: kind, urls } : { protocol: kind, urls, twitchTemplate };
  }
  d.outputCount += urls.length;
  return kind;
}

function addSegments(d: Draft, s: SegmentedFileOutput, perOutput: StorageProviderLike, perRequest: StorageProviderLike): void {
  const storage = resolveStorage(d, perOutput, perRequest);
  checkSegmentsRetry(cleanPath(s.filenamePrefix), cleanPath(s.playlistName), d.retryCount);
  const naming = segmentNaming(s.filenamePrefix, s.playlistName, s.livePlaylistName, d.ctx);
  d.segments = {
    plan: {
      ...naming,
      segmentSuffix: s.filenameSuffix === SegmentedFileSuffix.TIMESTAMP ? 'timestamp' : 'index',
      disableManifest: s.disableManifest,
      localDir: d.tmpDir,
      storage,
    },
    segmentDurationS: s.segmentDuration > 0 ? s.segmentDuration : 4,
  };
  d.outputCount++;
}

function imageSuffixOf(s: ImageFileSuffix): ImageSuffix {
  switch (s) {
    case ImageFileSuffix.IMAGE_SUFFIX_INDEX:
      return 'index';
    case ImageFileSuffix.IMAGE_SUFFIX_TIMESTAMP:
      return 'timestamp';
    case ImageFileSuffix.IMAGE_SUFFIX_NONE_OVERWRITE:
      return 'none_overwrite';
    default:
      throw errInvalidField('filename_suffix');
  }
}

function addImage(d: Draft, img: ImageOutput, perOutput: StorageProviderLike, perRequest: StorageProviderLike): void {
  if (img.imageCodec !== ImageCodec.IC_DEFAULT && img.imageCodec !== ImageCodec.IC_JPEG) throw errNoCompatibleCodec();
  const suffix = imageSuffixOf(img.filenameSuffix);
  const storage = resolveStorage(d, perOutput, perRequest);
  const { storageDir, imagePrefix } = imageNaming(img.filenamePrefix, d.ctx);
  const id = `images_${d.images.length}`;
  d.images.push({
    id,
    captureIntervalS: img.captureInterval > 0 ? img.captureInterval : 10,
    // web and template sources capture at the encoding size
    width: img.width > 0 ? img.width : d.enc.width,
    height: img.height > 0 ? img.height : d.enc.height,
    storageDir,
    imagePrefix,
    filenamePrefix: `${storageDir}${imagePrefix}`,
    suffix,
    disableManifest: img.disableManifest,
    localDir: path.join(d.tmpDir, id),
    storage,
  });
  d.outputCount++;
}

/** Segment duration vs keyframe interval. */
function adjustKeyframes(d: Draft, hasStream: boolean): void {
  if (d.segments) {
    const kfi = Math.floor(d.enc.keyFrameIntervalS);
    if (hasStream && kfi >= 1) d.segments.segmentDurationS = Math.min(kfi, d.segments.segmentDurationS);
    d.enc.keyFrameIntervalS = 0;
  } else if (d.enc.keyFrameIntervalS === 0 && d.stream) {
    d.enc.keyFrameIntervalS = STREAM_KEYFRAME_INTERVAL_S;
  }
}

type V1Outputs = Pick<WebEgressRequest | RoomCompositeEgressRequest | TrackCompositeEgressRequest, 'fileOutputs' | 'streamOutputs' | 'segmentOutputs' | 'imageOutputs' | 'output'>;

function applyV1Outputs(d: Draft, req: V1Outputs): void {
  const { fileOutputs: files, streamOutputs: streams, segmentOutputs: segments, imageOutputs: images } = req;

  let file: EncodedFileOutput | undefined;
  if (files.length > 1) throw errInvalidField('multiple file outputs');
  file = files[0] ?? (req.output.case === 'file' ? req.output.value : undefined);
  if (file) addFile(d, file.fileType, file.filepath, file.disableManifest, file.output, undefined);

  if (streams.length > 1) throw errInvalidField('multiple stream outputs');
  const stream = streams[0] ?? (req.output.case === 'stream' ? req.output.value : undefined);
  if (stream) {
    addStream(d, stream, false);
    // an empty stream output only makes sense next to another output (URLs added later)
    if (files.length + segments.length + images.length === 0 && stream.urls.length === 0) {
      throw errInvalidField('stream url');
    }
  }

  if (segments.length > 1) throw errInvalidField('multiple segmented file outputs');
  const seg = segments[0] ?? (req.output.case === 'segments' ? req.output.value : undefined);
  if (seg) addSegments(d, seg, seg.output, undefined);

  adjustKeyframes(d, stream !== undefined);

  if (images.length > 0) {
    if (!d.videoEnabled) throw errInvalidField('audio_only images');
    // images only: video only
    if (!d.file && !d.stream && !d.websocket && !d.segments) d.audioEnabled = false;
    for (const img of images) addImage(d, img, img.output, undefined);
  }

  if (d.outputCount === 0) throw errInvalidField('output');
}

/**
 * v2 PASSTHROUGH (`validatePassthrough`): one track by id — `video_track_id`, or a single audio
 * route matching a track id — written as track egress is, to exactly one file
 * output of the default file type.
 */
function applyPassthrough(d: Draft, req: StartEgressRequest): void {
  if (req.source.case !== 'media') throw errInvalidField('passthrough source');
  const m = req.source.value;
  if (m.video.case === 'videoTrackId' && m.video.value === '') throw errInvalidField('passthrough video_track_id');
  if (m.video.case === 'participantVideo') throw errInvalidField('passthrough participant_video');
  const audio = m.audio;
  if (audio?.captureAll) throw errInvalidField('passthrough capture_all');
  const routes = audio?.routes ?? [];
  if (routes.length > 1) throw errInvalidField('passthrough audio routes');
  let audioTrackId = '';
  const route = routes[0];
  if (route) {
    if (route.match.case !== 'trackId') throw errInvalidField('passthrough audio route match');
    if (route.match.value === '') throw errInvalidField('passthrough audio route track_id');
    audioTrackId = route.match.value;
  }
  const videoTrackId = m.video.case === 'videoTrackId' ? m.video.value : '';
  if ((videoTrackId === '') === (audioTrackId === '')) throw errInvalidField('passthrough track_id');
  if (req.outputs.length !== 1) throw errInvalidField('passthrough outputs');
  const out = req.outputs[0];
  if (out?.config.case !== 'file') throw errInvalidField('passthrough output');
  const f = out.config.value;
  if (f.fileType !== EncodedFileType.DEFAULT_FILETYPE) throw errInvalidField('passthrough file_type');
  const trackId = videoTrackId || audioTrackId;
  d.requestType = 'track';
  setRoom(d);
  d.sdkSource = true;
  d.source = { kind: 'track', trackId, roomName: d.roomName };
  d.audioEnabled = true;
  d.videoEnabled = false;
  d.ctx = { ...d.ctx, identifier: trackId, replacements: new Map([...d.ctx.replacements, ['{track_id}', trackId]]) };
  // OGG until the track turns out to be video (then WebM / MP4, see sdk-egress.ts).
  addFile(d, EncodedFileType.OGG, f.filepath, f.disableManifest, out.storage?.provider, req.storage?.provider);
}

const PARTICIPANT_KINDS: ReadonlyMap<ParticipantInfo_Kind, ParticipantKindName> = new Map([
  [ParticipantInfo_Kind.STANDARD, 'standard'],
  [ParticipantInfo_Kind.INGRESS, 'ingress'],
  [ParticipantInfo_Kind.EGRESS, 'egress'],
  [ParticipantInfo_Kind.SIP, 'sip'],
  [ParticipantInfo_Kind.AGENT, 'agent'],
  [ParticipantInfo_Kind.CONNECTOR, 'connector'],
  [ParticipantInfo_Kind.BRIDGE, 'bridge'],
]);

function audioRouteOf(r: AudioRoute): AudioRoutePlan {
  const channel = r.channel === AudioChannel.LEFT ? 'left' : r.channel === AudioChannel.RIGHT ? 'right' : 'both';
  switch (r.match.case) {
    case 'trackId':
      return { match: r.match.value === '' ? { none: true } : { trackId: r.match.value }, channel };
    case 'participantIdentity':
      return { match: r.match.value === '' ? { none: true } : { identity: r.match.value }, channel };
    case 'participantKind': {
      const kind = PARTICIPANT_KINDS.get(r.match.value);
      return { match: kind ? { participantKind: kind } : { none: true }, channel };
    }
    default:
      return { match: { none: true }, channel };
  }
}

/**
 * v2 media source, transcoded (`applyV2Source`): video from `video_track_id` or a participant's
 * camera / screen share; audio from capture_all (every track, both channels; the routes are then
 * ignored, as the original does) or from the routes. Neither → `audio or video`. Named
 * participants and tracks are waited for at run time (30 s, as the original waits).
 */
function applyMediaSource(d: Draft, m: MediaSource): void {
  d.requestType = 'media';
  setRoom(d);
  d.sdkSource = true;
  let video: MediaSourcePlan['video'] = null;
  if (m.video.case === 'videoTrackId') video = { trackId: m.video.value };
  else if (m.video.case === 'participantVideo') video = { identity: m.video.value.identity, screenShare: m.video.value.preferScreenShare };
  let audio: MediaSourcePlan['audio'] = null;
  if (m.audio?.captureAll) audio = { captureAll: true, routes: [] };
  else if (m.audio && m.audio.routes.length > 0) audio = { captureAll: false, routes: m.audio.routes.map(audioRouteOf) };
  d.videoEnabled = video !== null;
  d.audioEnabled = audio !== null;
  if (!d.audioEnabled && !d.videoEnabled) throw errInvalidField('audio or video');
  d.source = { kind: 'media', video, audio, roomName: d.roomName };
}

function applyV2Outputs(d: Draft, req: StartEgressRequest): void {
  if (req.outputs.length === 0) throw errInvalidField('output');
  const perRequest: ProtoStorageConfig['provider'] | undefined = req.storage?.provider;
  let files = 0;
  let streams = 0;
  let segments = 0;
  for (const o of req.outputs) {
    const perOutput = o.storage?.provider;
    switch (o.config.case) {
      case 'file':
        if (++files > 1) throw errInvalidField('multiple file outputs');
        addFile(d, o.config.value.fileType, o.config.value.filepath, o.config.value.disableManifest, perOutput, perRequest);
        break;
      case 'stream':
        if (++streams > 1) throw errInvalidField('multiple stream outputs');
        addStream(d, o.config.value, true);
        break;
      case 'segments':
        if (++segments > 1) throw errInvalidField('multiple segmented file outputs');
        addSegments(d, o.config.value, perOutput, perRequest);
        break;
      case 'images':
        if (!d.videoEnabled) throw errInvalidField('audio_only images');
        addImage(d, o.config.value, perOutput, perRequest);
        break;
      default:
        throw errInvalidField('output config');
    }
  }
  if (d.outputCount === 0) throw errInvalidField('output');
  if (files === 0 && streams === 0 && segments === 0 && d.images.length > 0) d.audioEnabled = false;
  adjustKeyframes(d, streams > 0);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}
