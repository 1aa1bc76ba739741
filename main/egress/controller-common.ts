import type { EgressInfo, EgressStatus } from '@livekit/protocol';
import type { AudioEncoding, Container, VideoEncoding } from '../../gst/output-pipeline.js';
import type { GstExitInfo } from '../../gst/gst-process.js';
import { EgressError } from '../contracts/errors.js';
import type { EncodingPlan, FileType } from '../contracts/pipeline.js';
import { canTransition, isTerminal } from './status.js';

/** What both egress controllers (page and SDK source) share: status moves, containers, encoder settings, gst exit texts. */

/** The x264 settings of a plan (outputs add their own: HLS keyframes and VBV, RTMP's CBR). */
export function videoEncodingOf(encoding: EncodingPlan, threads: number): VideoEncoding {
  return {
    width: encoding.width,
    height: encoding.height,
    framerate: encoding.framerate,
    bitrateKbps: encoding.videoBitrateKbps,
    profile: encoding.videoProfile,
    keyFrameIntervalS: encoding.keyFrameIntervalS,
    threads,
  };
}

/** The audio encoder settings of a plan. */
export function audioEncodingOf(encoding: EncodingPlan): AudioEncoding {
  return { codec: encoding.audioCodec, bitrateKbps: encoding.audioBitrateKbps, sampleRate: encoding.audioFrequency };
}

export interface StatusFields {
  error?: string;
  errorCode?: number;
  details?: string;
}

/**
 * Moves `info` to `status` when the status machine allows it (stamping updatedAt, and endedAt for a
 * terminal status); false when it does not, and `info` is left as it was.
 */
export function applyStatus(info: EgressInfo, status: EgressStatus, fields: StatusFields = {}, endedAtNs?: bigint): boolean {
  if (!canTransition(info.status, status)) return false;
  const now = BigInt(Date.now()) * 1_000_000n;
  info.status = status;
  info.updatedAt = now;
  if (fields.error !== undefined) info.error = fields.error;
  if (fields.errorCode !== undefined) info.errorCode = fields.errorCode;
  if (fields.details !== undefined) info.details = fields.details;
  if (isTerminal(status)) info.endedAt = endedAtNs ?? now;
  return true;
}

/** The gst container for a file type (WebM needs a VP8/VP9 bitstream, which a transcode never is). */
export function containerOf(fileType: FileType): Container {
  if (fileType === 'webm') throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'webm output needs a VP8/VP9 track source');
  return fileType;
}

/** How gst-launch ended, for an error text. */
export function describeExit(info: GstExitInfo): string {
  if (info.error) return info.error;
  if (info.signal) return `gst-launch killed by ${info.signal}`;
  return `gst-launch exited with code ${info.code}`;
}
