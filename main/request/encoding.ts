import { AudioCodec as ProtoAudioCodec, EncodingOptionsPreset, VideoCodec as ProtoVideoCodec, type EncodingOptions } from '@livekit/protocol';
import { errInvalidField, errInvalidInput, EgressError } from '../contracts/errors.js';
import type { AudioCodec, FileType, H264Profile } from '../contracts/pipeline.js';

/**
 * Encoding presets, advanced options and codec compatibility.
 */

export interface PresetValues {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  readonly videoBitrateKbps: number;
}

/** EncodingOptionsPreset → values (H264 Main, depth 24, audio 128 kbps / 44100 Hz for all). */
export const PRESETS: Readonly<Record<number, PresetValues>> = {
  [EncodingOptionsPreset.H264_720P_30]: { width: 1280, height: 720, framerate: 30, videoBitrateKbps: 3000 },
  [EncodingOptionsPreset.H264_720P_60]: { width: 1280, height: 720, framerate: 60, videoBitrateKbps: 4500 },
  [EncodingOptionsPreset.H264_1080P_30]: { width: 1920, height: 1080, framerate: 30, videoBitrateKbps: 4500 },
  [EncodingOptionsPreset.H264_1080P_60]: { width: 1920, height: 1080, framerate: 60, videoBitrateKbps: 6000 },
  [EncodingOptionsPreset.PORTRAIT_H264_720P_30]: { width: 720, height: 1280, framerate: 30, videoBitrateKbps: 3000 },
  [EncodingOptionsPreset.PORTRAIT_H264_720P_60]: { width: 720, height: 1280, framerate: 60, videoBitrateKbps: 4500 },
  [EncodingOptionsPreset.PORTRAIT_H264_1080P_30]: { width: 1080, height: 1920, framerate: 30, videoBitrateKbps: 4500 },
  [EncodingOptionsPreset.PORTRAIT_H264_1080P_60]: { width: 1080, height: 1920, framerate: 60, videoBitrateKbps: 6000 },
};

export const DEFAULT_WIDTH = 1280;
export const DEFAULT_HEIGHT = 720;
export const DEFAULT_DEPTH = 24;
export const DEFAULT_FRAMERATE = 30;
export const DEFAULT_VIDEO_BITRATE_KBPS = 3000;
export const DEFAULT_AUDIO_BITRATE_KBPS = 128;
export const DEFAULT_AUDIO_FREQUENCY = 44100;
export const OPUS_FREQUENCY = 48000;
/** Default keyframe interval when a stream (RTMP/SRT) output exists and none was asked for. */
export const STREAM_KEYFRAME_INTERVAL_S = 4;

/** Mime-like codec names, as the original's error texts print them. */
export type AudioMime = 'audio/aac' | 'audio/opus' | 'audio/mpeg' | 'audio/x-raw';
export type VideoMime = 'video/h264';
export type CodecMime = AudioMime | VideoMime;

/** Output kinds taking part in codec negotiation, named as the original prints them. */
export type EncodedOutputType =
  | 'video/mp4'
  | 'audio/ogg'
  | 'audio/mpeg'
  | 'application/x-mpegurl'
  | 'rtmp'
  | 'srt'
  | 'audio/x-raw'
  /** file output with DEFAULT_FILETYPE (resolved after negotiation) */
  | '';

/** Which codecs each output accepts. MP3 accepts only MP3 here (the original also listed Opus/AAC/raw). */
export const CODEC_COMPATIBILITY: Readonly<Record<EncodedOutputType, ReadonlySet<CodecMime>>> = {
  'video/mp4': new Set<CodecMime>(['audio/aac', 'audio/opus', 'video/h264']),
  'audio/ogg': new Set<CodecMime>(['audio/opus']),
  'audio/mpeg': new Set<CodecMime>(['audio/mpeg']),
  'application/x-mpegurl': new Set<CodecMime>(['audio/aac', 'video/h264']),
  rtmp: new Set<CodecMime>(['audio/aac', 'video/h264']),
  srt: new Set<CodecMime>(['audio/aac', 'video/h264']),
  'audio/x-raw': new Set<CodecMime>(['audio/x-raw']),
  '': new Set<CodecMime>(['audio/aac', 'audio/opus', 'audio/mpeg', 'video/h264']),
};

export const DEFAULT_AUDIO_CODEC: Readonly<Partial<Record<EncodedOutputType, AudioMime>>> = {
  'video/mp4': 'audio/aac',
  'audio/ogg': 'audio/opus',
  'audio/mpeg': 'audio/mpeg',
  'application/x-mpegurl': 'audio/aac',
  rtmp: 'audio/aac',
  srt: 'audio/aac',
  'audio/x-raw': 'audio/x-raw',
};
export const DEFAULT_VIDEO_CODEC: Readonly<Partial<Record<EncodedOutputType, VideoMime>>> = {
  'video/mp4': 'video/h264',
  'application/x-mpegurl': 'video/h264',
  rtmp: 'video/h264',
  srt: 'video/h264',
};

const ALL_AUDIO: readonly AudioMime[] = ['audio/aac', 'audio/opus', 'audio/x-raw', 'audio/mpeg'];
const ALL_VIDEO: readonly VideoMime[] = ['video/h264'];

export const FILE_OUTPUT_TYPE: Readonly<Record<'mp4' | 'ogg' | 'mp3', EncodedOutputType>> = {
  mp4: 'video/mp4',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

export function errNoCompatibleCodec(): EgressError {
  return errInvalidInput('no supported codec is compatible with all outputs');
}
export function errNoCompatibleFileOutputType(): EgressError {
  return errInvalidInput('no supported file output type is compatible with the selected codecs');
}
export function errIncompatible(format: string, codec: string): EgressError {
  return errInvalidInput(`format ${format} incompatible with codec ${codec}`);
}

/** Mutable encoding state while a request is validated. */
export interface EncodingState {
  width: number;
  height: number;
  depth: number;
  framerate: number;
  audioBitrateKbps: number;
  audioFrequency: number;
  videoBitrateKbps: number;
  videoProfile: H264Profile;
  keyFrameIntervalS: number;
  /** Codec asked for (advanced options) or forced by a stream output; null = any. */
  requestedAudio: AudioMime | null;
  requestedVideo: VideoMime | null;
  passthrough: boolean;
}

export function defaultEncoding(): EncodingState {
  return {
    width: DEFAULT_WIDTH,
    height: DEFAULT_HEIGHT,
    depth: DEFAULT_DEPTH,
    framerate: DEFAULT_FRAMERATE,
    audioBitrateKbps: DEFAULT_AUDIO_BITRATE_KBPS,
    audioFrequency: DEFAULT_AUDIO_FREQUENCY,
    videoBitrateKbps: DEFAULT_VIDEO_BITRATE_KBPS,
    videoProfile: 'main',
    keyFrameIntervalS: 0,
    requestedAudio: null,
    requestedVideo: null,
    passthrough: false,
  };
}

/** Applies a preset (unknown values leave the 720p30 defaults, as the original). */
export function applyPreset(e: EncodingState, preset: EncodingOptionsPreset): void {
  if (preset === EncodingOptionsPreset.PASSTHROUGH) {
    e.passthrough = true;
    return;
  }
  const p = PRESETS[preset];
  if (!p) return;
  e.width = p.width;
  e.height = p.height;
  e.framerate = p.framerate;
  e.videoBitrateKbps = p.videoBitrateKbps;
}

/** Applies advanced options; zero fields keep the defaults. Throws `width`/`height`/`depth`. */
export function applyAdvanced(e: EncodingState, a: EncodingOptions): void {
  switch (a.audioCodec) {
    case ProtoAudioCodec.OPUS:
      e.requestedAudio = 'audio/opus';
      break;
    case ProtoAudioCodec.AAC:
      e.requestedAudio = 'audio/aac';
      break;
    case ProtoAudioCodec.AC_MP3:
      e.requestedAudio = 'audio/mpeg';
      break;
  }
  if (a.audioBitrate > 0) e.audioBitrateKbps = a.audioBitrate;
  if (a.audioFrequency > 0) e.audioFrequency = a.audioFrequency;

  switch (a.videoCodec) {
    case ProtoVideoCodec.H264_BASELINE:
      e.requestedVideo = 'video/h264';
      e.videoProfile = 'baseline';
      break;
    case ProtoVideoCodec.H264_MAIN:
      e.requestedVideo = 'video/h264';
      break;
    case ProtoVideoCodec.H264_HIGH:
      e.requestedVideo = 'video/h264';
      e.videoProfile = 'high';
      break;
    case ProtoVideoCodec.VP8:
      // the original silently encodes H264 instead; we say so
      throw errInvalidInput('VP8 encoding is not yet supported');
  }

  if (a.width > 0) {
    if (a.width < 16 || a.width % 2 === 1) throw errInvalidField('width');
    e.width = a.width;
  }
  if (a.height > 0) {
    if (a.height < 16 || a.height % 2 === 1) throw errInvalidField('height');
    e.height = a.height;
  }
  switch (a.depth) {
    case 0:
      break;
    case 8:
    case 16:
    case 24:
      e.depth = a.depth;
      break;
    default:
      throw errInvalidField('depth');
  }
  if (a.framerate > 0) e.framerate = a.framerate;
  if (a.videoBitrate > 0) e.videoBitrateKbps = a.videoBitrate;
  if (a.keyFrameInterval > 0) e.keyFrameIntervalS = a.keyFrameInterval;
}

export interface CodecChoice {
  /** null when audio is disabled */
  readonly audio: AudioMime | null;
  /** null when video is disabled */
  readonly video: VideoMime | null;
  /** Resolved type of a DEFAULT_FILETYPE file output (null when there is none). */
  readonly defaultFileType: 'mp4' | 'ogg' | 'mp3' | null;
}

/**
 * Codec negotiation: intersect the requested (or all) codecs with every encoded output,
 * in the order file, segments, stream, websocket; resolve a DEFAULT_FILETYPE file; pick the
 * default codec of the first output that allows it.
 */
export function negotiateCodecs(
  outputs: readonly EncodedOutputType[],
  audioEnabled: boolean,
  videoEnabled: boolean,
  requestedAudio: AudioMime | null,
  requestedVideo: VideoMime | null,
): CodecChoice {
  const narrow = <T extends CodecMime>(all: readonly T[], requested: T | null): Set<T> => {
    let set = new Set<T>(requested ? [requested] : all);
    for (const o of outputs) {
      const compat = CODEC_COMPATIBILITY[o];
      set = new Set([...set].filter((c) => compat.has(c)));
      if (set.size === 0) {
        if (requested === null) throw errNoCompatibleCodec();
        throw errIncompatible(o, requested);
      }
    }
    return set;
  };
  const audioSet = audioEnabled ? narrow(ALL_AUDIO, requestedAudio) : new Set<AudioMime>();
  const videoSet = videoEnabled ? narrow(ALL_VIDEO, requestedVideo) : new Set<VideoMime>();

  let defaultFileType: CodecChoice['defaultFileType'] = null;
  const resolved = [...outputs];
  const idx = outputs.indexOf('');
  if (idx >= 0) {
    const candidates: readonly ('ogg' | 'mp4' | 'mp3')[] = videoEnabled ? ['mp4'] : ['ogg', 'mp4', 'mp3'];
    const fits = (t: 'ogg' | 'mp4' | 'mp3'): boolean => {
      const compat = CODEC_COMPATIBILITY[FILE_OUTPUT_TYPE[t]];
      const audioOk = !audioEnabled || [...audioSet].some((c) => compat.has(c));
      const videoOk = !videoEnabled || [...videoSet].some((c) => compat.has(c));
      return audioOk && videoOk;
    };
    const t = candidates.find(fits);
    if (!t) throw errNoCompatibleFileOutputType();
    defaultFileType = t;
    resolved[idx] = FILE_OUTPUT_TYPE[t];
  }

  let audio: AudioMime | null = null;
  if (audioEnabled) {
    for (const o of resolved) {
      const d = DEFAULT_AUDIO_CODEC[o];
      if (d && audioSet.has(d)) {
        audio = d;
        break;
      }
    }
    audio ??= requestedAudio ?? ALL_AUDIO.find((c) => audioSet.has(c)) ?? null;
  }
  let video: VideoMime | null = null;
  if (videoEnabled) {
    for (const o of resolved) {
      const d = DEFAULT_VIDEO_CODEC[o];
      if (d && videoSet.has(d)) {
        video = d;
        break;
      }
    }
    video ??= requestedVideo ?? ALL_VIDEO.find((c) => videoSet.has(c)) ?? null;
  }
  return { audio, video, defaultFileType };
}

export function audioCodecOf(m: AudioMime): AudioCodec | 'raw' {
  switch (m) {
    case 'audio/aac':
      return 'aac';
    case 'audio/opus':
      return 'opus';
    case 'audio/mpeg':
      return 'mp3';
    case 'audio/x-raw':
      return 'raw';
  }
}

export function fileTypeOutput(t: FileType): EncodedOutputType {
  return t === 'webm' ? '' : FILE_OUTPUT_TYPE[t];
}
