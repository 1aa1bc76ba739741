import { z } from 'zod';

/**
 * The booth's contract: one zod schema per operation, shared by both transports of the one booth
 * service (main/booth/) — the Electron IPC (main/electron/app.ts + preload/booth-preload.cts) and the
 * console's JSON API (main/booth/console-server.ts). Each transport validates every message with the
 * operation's schema before the service sees it; the renderer only ever sees the typed BoothApi.
 */

/** Presets the booth offers (the original's EncodingOptionsPreset names, PASSTHROUGH excluded). */
export const BOOTH_PRESETS = [
  'H264_720P_30',
  'H264_720P_60',
  'H264_1080P_30',
  'H264_1080P_60',
  'PORTRAIT_H264_720P_30',
  'PORTRAIT_H264_720P_60',
  'PORTRAIT_H264_1080P_30',
  'PORTRAIT_H264_1080P_60',
] as const;

/** Room layouts of the built-in template (templates/room). */
export const BOOTH_LAYOUTS = ['grid', 'speaker', 'single-speaker', 'grid-light', 'speaker-light', 'single-speaker-light'] as const;

const text = (max: number): z.ZodString => z.string().max(max);

/** What to record: a web page (empty URL = the bundled demo page) or a LiveKit room through a template. */
export const boothSourceSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('web'),
      url: z.union([z.literal(''), z.string().max(4096).url()]).default(''),
      awaitStartSignal: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      kind: z.literal('room'),
      serverUrl: z.string().max(2048).regex(/^wss?:\/\/[^\s]+$/, 'must be a ws:// or wss:// URL'),
      roomName: z.string().min(1).max(256),
      layout: z.union([z.literal(''), z.enum(BOOTH_LAYOUTS)]).default(''),
      /** API key/secret (the recorder's token is made from them), or a ready token. */
      apiKey: text(256).default(''),
      apiSecret: text(1024).default(''),
      token: text(8192).default(''),
    })
    .strict(),
]);
export type BoothSource = z.infer<typeof boothSourceSchema>;

export const boothOutputsSchema = z
  .object({
    /** `local`: a folder on this machine; `storage`: the storage configured in the config file. */
    destination: z.enum(['local', 'storage']).default('local'),
    /** Local: the folder (default: the booth's recordings folder). Storage: the key prefix (dir/). */
    folder: text(4096).default(''),
    fileType: z.enum(['mp4', 'ogg', 'mp3']).default('mp4'),
    /** Also go live to this RTMP(S) URL from the same encode. */
    rtmpUrl: z.union([z.literal(''), z.string().max(4096).regex(/^rtmps?:\/\/[^\s]+$/, 'must be an rtmp:// or rtmps:// URL')]).default(''),
    /** Also write HLS (playlist.m3u8, live.m3u8, segments) into this folder. */
    hlsDir: text(4096).default(''),
  })
  .strict();
export type BoothOutputs = z.infer<typeof boothOutputsSchema>;

export const boothStartSchema = z
  .object({
    source: boothSourceSchema.default({ kind: 'web' }),
    preset: z.enum(BOOTH_PRESETS).default('H264_720P_30'),
    audioOnly: z.boolean().default(false),
    videoOnly: z.boolean().default(false),
    outputs: boothOutputsSchema.default({}),
    /** Stop by itself after this many seconds of wall-clock time (0 = until stopped). */
    durationS: z.number().nonnegative().max(24 * 3600).default(0),
  })
  .strict();
export type BoothStartRequest = z.input<typeof boothStartSchema>;
export type BoothStart = z.infer<typeof boothStartSchema>;

/** Settings kept between runs: the form as last used. Secrets (API secret, token) are never kept. */
export const boothSettingsSchema = z
  .object({
    sourceKind: z.enum(['web', 'room']).default('web'),
    url: text(4096).default(''),
    serverUrl: text(2048).default(''),
    roomName: text(256).default(''),
    layout: text(64).default(''),
    apiKey: text(256).default(''),
    preset: z.enum(BOOTH_PRESETS).default('H264_720P_30'),
    audioOnly: z.boolean().default(false),
    videoOnly: z.boolean().default(false),
    destination: z.enum(['local', 'storage']).default('local'),
    folder: text(4096).default(''),
    fileType: z.enum(['mp4', 'ogg', 'mp3']).default('mp4'),
    rtmpUrl: text(4096).default(''),
    hlsDir: text(4096).default(''),
  })
  .strict();
export type BoothSettings = z.infer<typeof boothSettingsSchema>;

const empty = z.object({}).strict();
const recordingRef = z.object({ id: z.string().regex(/^EG_[0-9A-Za-z]{12}$/, 'must be an egress id (EG_…)') }).strict();

/** One schema per operation: the request each transport validates. */
export const boothOperations = {
  getState: empty,
  start: boothStartSchema,
  pause: empty,
  resume: empty,
  stop: empty,
  listRecordings: empty,
  deleteRecording: recordingRef,
  revealRecording: recordingRef,
  getSettings: empty,
  saveSettings: boothSettingsSchema,
} as const;
export type BoothOperation = keyof typeof boothOperations;

/**
 * What the booth shows of a recording. `status` is the booth's presentation of the EgressInfo status:
 * the original's names without the `EGRESS_` prefix, plus PAUSED for an ACTIVE recording that is
 * paused. `error` is the controller's EgressError text, as the original words it.
 */
export type BoothStatusName = 'STARTING' | 'ACTIVE' | 'PAUSED' | 'ENDING' | 'COMPLETE' | 'FAILED' | 'ABORTED' | 'LIMIT_REACHED';

export interface BoothRecordingState {
  readonly egressId: string;
  readonly status: BoothStatusName;
  /** What is recorded: the page URL, or `room <name>`. */
  readonly source: string;
  /** ms since the epoch of the recording's first instant, the file's time 0 (0 until known). */
  readonly startedAtMs: number;
  /** Recorded time so far (paused time left out), ms. */
  readonly elapsedMs: number;
  /** Bytes of the output file on disk so far. */
  readonly bytes: number;
  /** Peak and RMS (0..1) of the page's audio; null without audio. */
  readonly audio: { readonly peak: number; readonly rms: number } | null;
  /** While ENDING: what the booth is waiting for (finalising the file, uploading it). */
  readonly phase: string;
  /** While the file is stored: bytes the storage has taken of the file's size; null before. */
  readonly upload: { readonly sentBytes: number; readonly totalBytes: number } | null;
  readonly details: string;
  readonly error: string;
  readonly location: string;
  /** Paused intervals so far, ISO 8601. */
  readonly paused: readonly { readonly from: string; readonly to: string }[];
}

export interface BoothState {
  /** The running recording, or the one that finished last (until the next start). */
  readonly recording: BoothRecordingState | null;
  /** True while a recording runs: a start is refused then. */
  readonly busy: boolean;
  /** The console cannot reveal files in a folder: it shows their path instead. */
  readonly canReveal: boolean;
  /** Whether a storage upload is configured (the `storage` destination is usable). */
  readonly storageConfigured: boolean;
  /** Where local recordings go by default. */
  readonly recordingsDir: string;
}

/** A past recording, as listed (newest first) and kept in the config dir. */
export interface RecordingEntry {
  readonly id: string;
  readonly source: string;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationS: number;
  readonly sizeBytes: number;
  /** The original's status name (EGRESS_COMPLETE …). */
  readonly status: string;
  /** Where the file is: a local path, or the storage location (URL). */
  readonly location: string;
  /** `local` or the storage's name (s3, gcp, azure, alioss) the file was uploaded to. */
  readonly storedIn: string;
  readonly error: string;
  readonly details: string;
  /** The file is on this machine (it can be played through the booth). */
  readonly playable: boolean;
}

/** Live events, in order, to every open UI. */
export type BoothEvent =
  | { readonly type: 'state'; readonly state: BoothState }
  | { readonly type: 'recordings'; readonly recordings: readonly RecordingEntry[] }
  /** A JPEG preview of the page being recorded, as a data: URL. */
  | { readonly type: 'preview'; readonly egressId: string; readonly jpeg: string; readonly seq: number };

/** Reveal: Electron shows the file in its folder; the console answers with the path to show. */
export interface RevealResult {
  readonly path: string;
  readonly revealed: boolean;
}

/** What the booth UI gets, from either transport (window.egressBooth in Electron, HTTP in a browser). */
export interface BoothApi {
  getState(): Promise<BoothState>;
  start(req: BoothStartRequest): Promise<BoothState>;
  pause(): Promise<BoothState>;
  resume(): Promise<BoothState>;
  stop(): Promise<BoothState>;
  listRecordings(): Promise<RecordingEntry[]>;
  deleteRecording(req: { id: string }): Promise<RecordingEntry[]>;
  revealRecording(req: { id: string }): Promise<RevealResult>;
  getSettings(): Promise<BoothSettings>;
  saveSettings(req: z.input<typeof boothSettingsSchema>): Promise<BoothSettings>;
  /** The URL that plays/downloads a recording's file (console), or null (Electron: use reveal). */
  fileUrl(id: string): string | null;
  onEvent(cb: (e: BoothEvent) => void): () => void;
}

/** IPC channel of each operation, and the one event channel (main → booth window). */
export const IPC_PREFIX = 'egress:booth:';
export const IPC_EVENT_CHANNEL = 'egress:booth:event';
export function ipcChannelOf(op: BoothOperation): string {
  return IPC_PREFIX + op;
}

/**
 * A zod failure as one line naming the field, e.g. `source.url: Invalid url` — the text both
 * transports answer a malformed request with.
 */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const field = i.path.join('.');
      if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => (field ? `${field}.${k}` : k)).join(', ')}`;
      return `${field || 'body'}: ${i.message}`;
    })
    .join('; ');
}
