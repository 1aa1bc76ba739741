import type { UploadTarget } from './storage.js';

/**
 * The validated, fully-resolved plan of one egress: what the controller executes. Built from a
 * request plus the service config by main/request before anything is spawned; immutable after.
 */

export type RequestType = 'room_composite' | 'web' | 'participant' | 'track_composite' | 'track' | 'template' | 'media';
export type SourceKind = 'web' | 'sdk';
export type FileType = 'mp4' | 'ogg' | 'mp3' | 'webm';
export type AudioCodec = 'aac' | 'opus' | 'mp3';
export type H264Profile = 'baseline' | 'main' | 'high';

export interface EncodingPlan {
  readonly width: number;
  readonly height: number;
  readonly depth: number;
  readonly framerate: number;
  /** Codec picked for every encoded output. */
  readonly audioCodec: AudioCodec;
  readonly audioBitrateKbps: number;
  /** Sample rate of the encoded audio: audio_frequency for AAC/MP3, always 48000 for Opus. */
  readonly audioFrequency: number;
  readonly videoProfile: H264Profile;
  readonly videoBitrateKbps: number;
  /** Seconds between keyframes; 0 = encoder default. */
  readonly keyFrameIntervalS: number;
  /** True when audio leaves as raw PCM (WebSocket output only); audioCodec is then unused. */
  readonly rawAudio?: boolean;
}

/** Where a finished output goes: the resolved per-output → per-request → config storage. */
export interface StoragePlan {
  /** null = no upload config anywhere → local storage (copy to storage path). */
  readonly target: UploadTarget | null;
  /** From the service config, always applied. */
  readonly prefix: string;
  readonly generatePresignedUrl: boolean;
}

export interface FileOutputPlan {
  readonly fileType: FileType;
  /** Final storage path after filename templating, e.g. `web-2026-11-24T064151.mp4` or `dir/x.mp4`. */
  readonly storageFilepath: string;
  /** Absolute path of the file being written (inside the egress temp dir). */
  readonly localFilepath: string;
  readonly disableManifest: boolean;
  readonly storage: StoragePlan;
}

export interface WebSourcePlan {
  readonly kind: 'web';
  readonly url: string;
  readonly awaitStartSignal: boolean;
}

export interface TemplateSourcePlan {
  readonly kind: 'template';
  readonly baseUrl: string;
  readonly layout: string;
  readonly roomName: string;
  /** Recorder token from the request envelope; '' or absent = mint one from api_key/api_secret. */
  readonly token?: string;
  /** LiveKit URL: the envelope's ws_url, else the config's ws_url. */
  readonly wsUrl?: string;
}

/** Room connection of an SDK source (no page): the recorder joins the room itself. */
export interface RoomConnectionPlan {
  readonly roomName: string;
  /** Recorder token from the request envelope; '' or absent = mint one from api_key/api_secret. */
  readonly token?: string;
  /** LiveKit URL: the envelope's ws_url, else the config's ws_url. */
  readonly wsUrl?: string;
}

/** Participant egress: one participant's camera + microphone, or its screen share + its audio. */
export interface ParticipantSourcePlan extends RoomConnectionPlan {
  readonly kind: 'participant';
  readonly identity: string;
  readonly screenShare: boolean;
}

/** Track composite egress: one audio and/or one video track by id. */
export interface TrackCompositeSourcePlan extends RoomConnectionPlan {
  readonly kind: 'track_composite';
  /** '' = none. */
  readonly audioTrackId: string;
  /** '' = none. */
  readonly videoTrackId: string;
}

/** Track egress: one track by id, written to a file or sent as raw PCM over a WebSocket. */
export interface TrackSourcePlan extends RoomConnectionPlan {
  readonly kind: 'track';
  readonly trackId: string;
}

/** Audio-only room composite / template without a page: every audio track of the room, mixed. */
export interface RoomAudioSourcePlan extends RoomConnectionPlan {
  readonly kind: 'room_audio';
  /** audio_mixing. */
  readonly mixing: 'default' | 'dual_channel_agent' | 'dual_channel_alternate';
}

/** Participant kinds an audio route can match (livekit.ParticipantInfo.Kind). */
export type ParticipantKindName = 'standard' | 'ingress' | 'egress' | 'sip' | 'agent' | 'connector' | 'bridge';

/** What one audio route of a media source matches (livekit.AudioRoute.match). */
export type AudioRouteMatch =
  | { readonly trackId: string }
  | { readonly identity: string }
  | { readonly participantKind: ParticipantKindName }
  /** A match left empty (or an unknown kind): matches no track. */
  | { readonly none: true };

export interface AudioRoutePlan {
  readonly match: AudioRouteMatch;
  readonly channel: 'both' | 'left' | 'right';
}

/**
 * v2 media source: one video track, by id or a participant's camera / screen share,
 * and the audio tracks the routes match, each on its channel; capture_all records every audio
 * track on both channels (routes are then ignored, as the original does).
 */
export interface MediaSourcePlan extends RoomConnectionPlan {
  readonly kind: 'media';
  /** null = no video. */
  readonly video: { readonly trackId: string } | { readonly identity: string; readonly screenShare: boolean } | null;
  /** null = no audio. */
  readonly audio: { readonly captureAll: boolean; readonly routes: readonly AudioRoutePlan[] } | null;
}

export type SdkSourcePlan = ParticipantSourcePlan | TrackCompositeSourcePlan | TrackSourcePlan | RoomAudioSourcePlan | MediaSourcePlan;

export type SourcePlan = WebSourcePlan | TemplateSourcePlan | SdkSourcePlan;

export interface PipelinePlan extends PipelinePlanOutputs {
  readonly egressId: string;
  readonly requestType: RequestType;
  readonly sourceKind: SourceKind;
  readonly source: SourcePlan;
  readonly audioEnabled: boolean;
  readonly videoEnabled: boolean;
  readonly encoding: EncodingPlan;
  /** At most one file output. */
  readonly file: FileOutputPlan | null;
  /** Per-egress temp dir; every local output lives inside it. */
  readonly tmpDir: string;
  readonly roomName: string;
  readonly roomId: string;
  readonly retryCount: number;
}

// ------------------------------------------------------------------------------------------------
// Additions (main/request): stream, segments and image output plans. Validation fills them; the
// execution side builds sinks from them. New PipelinePlan/EncodingPlan fields are optional so that
// plans built by hand (tests, fixtures) keep compiling; buildPipelinePlan always sets them.

export type StreamProtocolKind = 'rtmp' | 'srt' | 'websocket';

export interface StreamUrlPlan {
  /** The URL exactly as requested (what UpdateStream's remove_output_urls refers to). */
  readonly requestedUrl: string;
  /**
   * Where to publish: `mux://k` expanded to Mux's RTMPS ingest; `twitch://k` expanded with the
   * Twitch ingest template; anything else as requested.
   */
  readonly url: string;
  /** StreamInfo.url and the only form that may be logged: RTMP stream key as `{abc...xyz}`. */
  readonly redactedUrl: string;
  /** RTMP stream key (the rtmp2sink stream id); '' for SRT/WebSocket. */
  readonly streamKey: string;
}

export interface StreamOutputPlan {
  readonly protocol: StreamProtocolKind;
  /** May be empty (v1 only, next to another output): URLs are added later by UpdateStream. */
  readonly urls: readonly StreamUrlPlan[];
  /** Ingest template `twitch://` URLs were expanded with (UpdateStream expands added URLs the same way). */
  readonly twitchTemplate?: string | undefined;
}

export type SegmentSuffix = 'index' | 'timestamp';

export interface SegmentsOutputPlan {
  /** Storage directory of the playlists ('' or ending in `/`). */
  readonly storageDir: string;
  /** Playlist file name inside storageDir, e.g. `playlist.m3u8`. */
  readonly playlistFilename: string;
  /** Live playlist file name inside storageDir; '' = no live playlist. */
  readonly livePlaylistFilename: string;
  /** Segment name prefix relative to storageDir (may hold a sub-directory, e.g. `dir2/name`). */
  readonly segmentPrefix: string;
  readonly segmentSuffix: SegmentSuffix;
  readonly segmentDurationS: number;
  readonly disableManifest: boolean;
  /** SegmentsInfo.playlist_name = storageDir + playlistFilename. */
  readonly playlistName: string;
  /** SegmentsInfo.live_playlist_name ('' when none). */
  readonly livePlaylistName: string;
  /** Local directory segments and playlists are written to (the egress temp dir). */
  readonly localDir: string;
  readonly storage: StoragePlan;
}

export type ImageSuffix = 'index' | 'timestamp' | 'none_overwrite';

export interface ImageOutputPlan {
  /** Unique within the egress (`images_<n>`); names the local directory. */
  readonly id: string;
  readonly captureIntervalS: number;
  /** 0 = source dimensions (SDK sources); web/template sources get the encoding size. */
  readonly width: number;
  readonly height: number;
  /** Storage directory of the images ('' or ending in `/`). */
  readonly storageDir: string;
  /** File name prefix inside storageDir (`<prefix>_00000.jpeg`, `<prefix>.jpeg` for none_overwrite). */
  readonly imagePrefix: string;
  /** ImagesInfo.filename_prefix: the prefix actually used, storageDir + imagePrefix. */
  readonly filenamePrefix: string;
  readonly suffix: ImageSuffix;
  readonly disableManifest: boolean;
  /** Local directory the images are written to (`<tmpDir>/<id>`). */
  readonly localDir: string;
  readonly storage: StoragePlan;
}

/** Optional additions to PipelinePlan/EncodingPlan (always set by main/request). */
export interface PipelinePlanOutputs {
  readonly stream?: StreamOutputPlan | null;
  readonly segments?: SegmentsOutputPlan | null;
  readonly images?: readonly ImageOutputPlan[];
}
