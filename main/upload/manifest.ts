import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CaptureTiming } from '../contracts/timing.js';
import type { UploadOutcome, UploadSink } from './manager.js';

/** Manifest `<egress_id>.json`; fields with empty values are omitted like Go's omitempty. */
export interface ManifestInfo {
  readonly egressId: string;
  readonly roomId?: string;
  readonly roomName?: string;
  /** Web egress URL. */
  readonly url?: string;
  /** Unix ns. */
  readonly startedAt?: bigint | number;
  readonly endedAt?: bigint | number;
  readonly publisherIdentity?: string;
  readonly trackId?: string;
  readonly trackKind?: string;
  readonly trackSource?: string;
  readonly audioTrackId?: string;
  readonly videoTrackId?: string;
  /** Paused intervals (ours; the original cannot pause), wall clock. */
  readonly paused?: readonly { readonly from: Date; readonly to: Date }[];
  /** Timing corrections applied to the capture (ours), for auditing its A/V alignment. */
  readonly timing?: CaptureTiming;
}

interface FileEntry {
  filename: string;
  location: string;
}
interface PlaylistEntry {
  location: string;
  segments: FileEntry[];
}
interface ImageEntry {
  filename: string;
  timestamp: string;
  location: string;
}

export class PlaylistHandle {
  constructor(private readonly entry: PlaylistEntry) {}
  addSegment(filename: string, location: string): void {
    this.entry.segments.push({ filename, location });
  }
  setLocation(location: string): void {
    this.entry.location = location;
  }
}

/** True when a manifest must be generated: backup configured, or any output kept its manifest. */
export function manifestRequired(backupConfigured: boolean, outputsDisableManifest: readonly boolean[]): boolean {
  return backupConfigured || outputsDisableManifest.some((d) => !d);
}

/**
 * Whether one sink uploads the manifest: when it did not disable it, or (backup configured) once
 * backup storage was used — then every sink uploads it even if it disabled its manifest.
 */
export function sinkUploadsManifest(disableManifest: boolean, backupStorageUsed: boolean): boolean {
  return !disableManifest || backupStorageUsed;
}

export class Manifest {
  private info: ManifestInfo;
  private readonly files: FileEntry[] = [];
  private readonly playlists: PlaylistEntry[] = [];
  private readonly images: ImageEntry[] = [];

  constructor(info: ManifestInfo) {
    this.info = { ...info };
  }

  update(patch: Partial<ManifestInfo>): void {
    this.info = { ...this.info, ...patch };
  }

  addFile(filename: string, location: string): void {
    this.files.push({ filename, location });
  }

  addPlaylist(location = ''): PlaylistHandle {
    const entry: PlaylistEntry = { location, segments: [] };
    this.playlists.push(entry);
    return new PlaylistHandle(entry);
  }

  /** timestamp: capture time (RFC3339 in the JSON). */
  addImage(filename: string, timestamp: Date, location: string): void {
    this.images.push({ filename, timestamp: rfc3339(timestamp), location });
  }

  /** The JSON text, field order and omit-empty as the original; ns timestamps exact. */
  toJSON(): string {
    const i = this.info;
    const o: Record<string, unknown> = {};
    const put = (k: string, v: unknown): void => {
      if (v === undefined || v === null || v === '' || v === 0 || v === 0n) return;
      if (Array.isArray(v) && v.length === 0) return;
      o[k] = v;
    };
    put('egress_id', i.egressId);
    put('room_id', i.roomId);
    put('room_name', i.roomName);
    put('url', i.url);
    put('started_at', i.startedAt === undefined ? undefined : BigInt(i.startedAt));
    put('ended_at', i.endedAt === undefined ? undefined : BigInt(i.endedAt));
    put('publisher_identity', i.publisherIdentity);
    put('track_id', i.trackId);
    put('track_kind', i.trackKind);
    put('track_source', i.trackSource);
    put('audio_track_id', i.audioTrackId);
    put('video_track_id', i.videoTrackId);
    put('files', this.files.map((f) => omitEmpty({ filename: f.filename, location: f.location })));
    put(
      'playlists',
      this.playlists.map((p) =>
        omitEmpty({ location: p.location, segments: p.segments.map((s) => omitEmpty({ filename: s.filename, location: s.location })) }),
      ),
    );
    put('images', this.images.map((m) => omitEmpty({ filename: m.filename, timestamp: m.timestamp, location: m.location })));
    put('paused', (i.paused ?? []).map((p) => ({ from: rfc3339(p.from), to: rfc3339(p.to) })));
    if (i.timing) {
      const t = i.timing;
      // Always written in full: a 0 here is a figure (no latency taken off), not an absent field.
      o['timing'] = {
        ...(t.videoClock ? { video_clock: t.videoClock } : {}),
        ...(t.audioClock ? { audio_clock: t.audioClock } : {}),
        page_clock_offset_us: Math.round(t.pageClockOffsetUs),
        page_clock_uncertainty_us: Math.round(t.pageClockUncertaintyUs),
        audio_latency_us: Math.round(t.audioLatencyUs),
        ...(t.audioEncoderDelayUs !== undefined ? { audio_encoder_delay_us: Math.round(t.audioEncoderDelayUs) } : {}),
      };
    }
    return JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? `__ns__${v.toString()}` : v)).replace(/"__ns__(-?\d+)"/g, '$1');
  }

  /**
   * Writes `<tmpDir>/<egress_id>.json` and uploads it through `sink` into `storageDir`
   * (file → dir of the file's storage path; segments → playlist dir; images → prefix dir).
   */
  async upload(sink: UploadSink, storageDir: string, tmpDir: string): Promise<UploadOutcome> {
    const name = `${this.info.egressId}.json`;
    await mkdir(tmpDir, { recursive: true });
    const local = path.join(tmpDir, name);
    await writeFile(local, this.toJSON());
    return sink.upload(local, path.posix.join(storageDir, name), 'json', { deleteAfterUpload: false });
  }
}

function omitEmpty(rec: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (v === '' || v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out;
}

/** Go's time.RFC3339 format in UTC (`2006-01-02T15:04:05Z`). */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Storage dir of a file output: `path.Dir(storagePath)` ('' for a bare name). */
export function dirOf(storageFilepath: string): string {
  const d = path.posix.dirname(storageFilepath);
  return d === '.' ? '' : d;
}
