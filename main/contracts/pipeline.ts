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
  /** Codec picked for every encoded output (compatibility §3.4 of the reference). */
  readonly audioCodec: AudioCodec;
  readonly audioBitrateKbps: number;
  /** Sample rate of the encoded audio: audio_frequency for AAC/MP3, always 48000 for Opus. */
  readonly audioFrequency: number;
  readonly videoProfile: H264Profile;
  readonly videoBitrateKbps: number;
  /** Seconds between keyframes; 0 = encoder default. */
  readonly keyFrameIntervalS: number;
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
}

export type SourcePlan = WebSourcePlan | TemplateSourcePlan;

export interface PipelinePlan {
  readonly egressId: string;
  readonly requestType: RequestType;
  readonly sourceKind: SourceKind;
  readonly source: SourcePlan;
  readonly audioEnabled: boolean;
  readonly videoEnabled: boolean;
  readonly encoding: EncodingPlan;
  /** At most one file output (reference §2.2). */
  readonly file: FileOutputPlan | null;
  /** Per-egress temp dir; every local output lives inside it. */
  readonly tmpDir: string;
  readonly roomName: string;
  readonly roomId: string;
  readonly retryCount: number;
}
