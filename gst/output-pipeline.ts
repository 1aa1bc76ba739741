/**
 * Turns a typed description of one egress's encoding and outputs into `gst-launch-1.0` arguments.
 * Encode once; every output hangs off the encoders. Knows nothing of LiveKit, Redis or storage.
 *
 * Inputs arrive as GDP streams (see gdp.ts) on file descriptors: video on fd 3, audio on fd 4.
 * Closing a descriptor is end-of-stream for that branch; when every branch has drained, gst-launch
 * exits 0 after the muxer finalised the file.
 */

import type { AudioCodec, H264Profile } from '../main/contracts/pipeline.js';

export type { AudioCodec, H264Profile };
export type Container = 'mp4' | 'ogg' | 'mp3';

export interface VideoEncoding {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  readonly bitrateKbps: number;
  readonly profile: H264Profile;
  /** Seconds; 0 = x264 default GOP with scene-cut detection. */
  readonly keyFrameIntervalS: number;
  /** 0 = x264 picks. */
  readonly threads: number;
}

export interface AudioEncoding {
  readonly codec: AudioCodec;
  readonly bitrateKbps: number;
  /** Output sample rate (Opus is always 48000). */
  readonly sampleRate: number;
}

export interface FileSinkPlan {
  readonly container: Container;
  readonly location: string;
}

export interface OutputPipelinePlan {
  readonly video: VideoEncoding | null;
  readonly audio: AudioEncoding | null;
  readonly file: FileSinkPlan;
}

export const VIDEO_FD = 3;
export const AUDIO_FD = 4;

/** Fragment length of the crash-tolerant MP4 written while recording (finalised into a plain MP4 at EOS). */
const MP4_FRAGMENT_MS = 1000;

/** Splits a gst-launch description into argv tokens (we never pass user text through a shell). */
function tokens(desc: string): string[] {
  return desc.split(/\s+/).filter((t) => t.length > 0);
}

export function videoBranch(v: VideoEncoding): string {
  // No B-frames: with frame reordering the first frame's DTS is negative, and the fragmented MP4 we
  // record into (crash tolerance) has no edit list to undo the shift, so every player would show the
  // video two frames (67 ms) late against the audio. It also takes encoder latency out of the start.
  const x264: string[] = ['x264enc', 'speed-preset=veryfast', `bitrate=${v.bitrateKbps}`, 'vbv-buf-capacity=2000', 'bframes=0'];
  if (v.keyFrameIntervalS > 0) {
    x264.push(`key-int-max=${Math.max(1, Math.round(v.keyFrameIntervalS * v.framerate))}`, 'option-string=scenecut=0');
  }
  if (v.threads > 0) x264.push(`threads=${v.threads}`);
  // The explicit I420 caps matter: without them x264 may negotiate 4:4:4 ("High 4:4:4 Predictive"),
  // which browsers do not play and which costs ~1.7x more CPU.
  return [
    `fdsrc fd=${VIDEO_FD} blocksize=1048576 ! gdpdepay ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0`,
    '! videoconvert ! videoscale add-borders=true ! videorate skip-to-first=true',
    `! video/x-raw,format=I420,width=${v.width},height=${v.height},framerate=${v.framerate}/1,pixel-aspect-ratio=1/1,colorimetry=bt709,chroma-site=mpeg2`,
    `! ${x264.join(' ')} ! video/x-h264,profile=${v.profile} ! h264parse ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0`,
  ].join(' ');
}

export function audioEncoder(a: AudioEncoding): string {
  switch (a.codec) {
    case 'aac':
      return `voaacenc bitrate=${a.bitrateKbps * 1000} ! aacparse`;
    case 'opus':
      return `opusenc bitrate=${a.bitrateKbps * 1000} ! opusparse`;
    case 'mp3':
      return `lamemp3enc target=bitrate cbr=true bitrate=${a.bitrateKbps} ! mpegaudioparse`;
  }
}

export function audioBranch(a: AudioEncoding): string {
  const rate = a.codec === 'opus' ? 48000 : a.sampleRate;
  return [
    `fdsrc fd=${AUDIO_FD} blocksize=65536 ! gdpdepay ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0`,
    // audiorate fills gaps (a throttled page, a dropped chunk) with silence so audio stays continuous.
    '! audioconvert ! audioresample ! audiorate tolerance=20000000',
    `! audio/x-raw,format=S16LE,layout=interleaved,rate=${rate},channels=2`,
    `! ${audioEncoder(a)} ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0`,
  ].join(' ');
}

function muxer(file: FileSinkPlan): string {
  switch (file.container) {
    case 'mp4':
      // Fragmented MP4 (moov, then moof+mdat per second): a killed pipeline still leaves a file that
      // plays up to its last complete fragment. (mp4mux's first-moov-then-finalise mode would end as a
      // plain MP4, but writes each moof after its mdat: a file cut short is unreadable.)
      return `mp4mux name=mux fragment-duration=${MP4_FRAGMENT_MS} ! filesink location=@LOCATION@ sync=false`;
    case 'ogg':
      return `oggmux name=mux ! filesink location=@LOCATION@ sync=false`;
    case 'mp3':
      return `xingmux name=mux ! filesink location=@LOCATION@ sync=false`;
  }
}

/** gst-launch-1.0 argv (without the program name) for the plan. */
export function buildLaunchArgs(plan: OutputPipelinePlan): string[] {
  if (!plan.video && !plan.audio) throw new Error('pipeline needs audio or video');
  const parts: string[] = [muxer(plan.file)];
  if (plan.video) parts.push(`${videoBranch(plan.video)} ! mux.`);
  if (plan.audio) parts.push(`${audioBranch(plan.audio)} ! mux.`);
  // The location is substituted after tokenising so a path with spaces stays one argument
  // (gst-launch escapes each argv element itself).
  return ['-e', ...tokens(parts.join(' ')).map((t) => (t === 'location=@LOCATION@' ? `location=${plan.file.location}` : t))];
}
