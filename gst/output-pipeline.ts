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
  /** x264 VBV buffer in ms (default 2000; HLS uses the segment duration, at most 10000). */
  readonly vbvBufferMs?: number;
  /** Constant bitrate with HRD signalling (RTMP ingest servers expect it). */
  readonly cbr?: boolean;
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

/** HLS segments: MPEG-TS fragments cut at keyframes every `segmentDurationS`. */
export interface SegmentSinkPlan {
  /** printf-style local path of the fragments, e.g. `/tmp/x/segments/seg_%05d.ts`. */
  readonly locationPattern: string;
  readonly segmentDurationS: number;
}

/** JPEG thumbnails every `intervalS` from the raw video (before the encoder). */
export interface ImageSinkPlan {
  /** Element name, unique in the pipeline (its bus messages carry it). */
  readonly name: string;
  /** printf-style local path, e.g. `/tmp/x/images_0/img_%05d.jpeg`. */
  readonly locationPattern: string;
  readonly intervalS: number;
  /** 0 = the encoding size. */
  readonly width: number;
  readonly height: number;
}

/**
 * Live stream: the encoded media muxed once (FLV for RTMP, MPEG-TS for SRT) and written to
 * STREAM_FD; the egress fans it out to one publisher process per URL, so URLs come and go without
 * touching the encoder.
 */
export interface StreamSinkPlan {
  readonly format: 'flv' | 'mpegts';
}

export interface OutputPipelinePlan {
  /**
   * Video arrives already encoded (H.264 Annex B access units from the page's WebCodecs encoder):
   * parsed and muxed as it is, no x264. Its size and bitrate were the encoder's; `video` still
   * describes them. Images need decoded frames and are refused with it.
   */
  readonly encodedVideo?: boolean;
  readonly stream?: StreamSinkPlan | null;
  readonly video: VideoEncoding | null;
  readonly audio: AudioEncoding | null;
  readonly file: FileSinkPlan | null;
  readonly segments?: SegmentSinkPlan | null;
  readonly images?: readonly ImageSinkPlan[];
}

export const VIDEO_FD = 3;
export const AUDIO_FD = 4;
/** The muxed live stream leaves the pipeline on this descriptor. */
export const STREAM_FD = 5;

/** Fragment length of the crash-tolerant MP4 written while recording (finalised into a plain MP4 at EOS). */
const MP4_FRAGMENT_MS = 1000;

/** Splits a gst-launch description into argv tokens (we never pass user text through a shell). */
function tokens(desc: string): string[] {
  return desc.split(/\s+/).filter((t) => t.length > 0);
}

/** Raw video in, normalised to the encoding's size, rate and colour. */
function rawVideo(v: VideoEncoding): string {
  return [
    `fdsrc fd=${VIDEO_FD} blocksize=1048576 ! gdpdepay ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0`,
    '! videoconvert ! videoscale add-borders=true ! videorate skip-to-first=true',
    `! video/x-raw,format=I420,width=${v.width},height=${v.height},framerate=${v.framerate}/1,pixel-aspect-ratio=1/1,colorimetry=bt709,chroma-site=mpeg2`,
  ].join(' ');
}

export function videoBranch(v: VideoEncoding): string {
  return `${rawVideo(v)} ! ${videoEncoder(v)}`;
}

/**
 * Encoded video in: h264parse reads the SPS/PPS the page's encoder puts before every keyframe and
 * gives each muxer the stream form it takes (avc for MP4, byte-stream for MPEG-TS).
 */
export function encodedVideoBranch(): string {
  return `fdsrc fd=${VIDEO_FD} blocksize=1048576 ! gdpdepay ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! h264parse`;
}

function videoEncoder(v: VideoEncoding): string {
  // No B-frames: with frame reordering the first frame's DTS is negative, and the fragmented MP4 we
  // record into (crash tolerance) has no edit list to undo the shift, so every player would show the
  // video two frames (67 ms) late against the audio. It also takes encoder latency out of the start.
  const x264: string[] = ['x264enc', 'speed-preset=veryfast', `bitrate=${v.bitrateKbps}`, `vbv-buf-capacity=${v.vbvBufferMs ?? 2000}`, 'bframes=0'];
  const options: string[] = [];
  if (v.keyFrameIntervalS > 0) {
    x264.push(`key-int-max=${Math.max(1, Math.round(v.keyFrameIntervalS * v.framerate))}`);
    options.push('scenecut=0');
  }
  if (v.cbr) options.push('nal-hrd=cbr');
  if (options.length > 0) x264.push(`option-string=${options.join(':')}`);
  if (v.threads > 0) x264.push(`threads=${v.threads}`);
  // The explicit I420 caps matter: without them x264 may negotiate 4:4:4 ("High 4:4:4 Predictive"),
  // which browsers do not play and which costs ~1.7x more CPU.
  return `${x264.join(' ')} ! video/x-h264,profile=${v.profile} ! h264parse ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0`;
}

/**
 * One thumbnail branch: videorate drops to one frame per interval in the tee's thread (cheap), so
 * the queue only ever holds a few frames and a slow JPEG encode never stalls the video encoder.
 */
function imageBranch(img: ImageSinkPlan, v: VideoEncoding): string {
  const size = img.width > 0 && img.height > 0 ? `,width=${img.width},height=${img.height}` : `,width=${v.width},height=${v.height}`;
  return [
    `rawtee. ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 leaky=downstream ! videorate ! video/x-raw,framerate=1/${Math.max(1, Math.round(img.intervalS))}`,
    `! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! videoscale add-borders=true ! video/x-raw,format=I420${size},pixel-aspect-ratio=1/1`,
    `! jpegenc ! multifilesink name=${img.name} location=@IMAGES_${img.name}@ post-messages=true sync=false`,
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

/**
 * Samples a decoder plays before the first sample given to the encoder, per codec as encoded here:
 * voaacenc's AAC 1600, lamemp3enc's MP3 1105 (measured: a click fed to GStreamer and decoded by
 * ffmpeg from MP4, MPEG-TS and MP3, at 44.1 and 48 kHz). Neither encoder tells its muxer, so no MP4
 * edit list, TS or MP3 header hides it and every player hears the audio that much late. Opus writes
 * its pre-skip into OGG and WebM and decoders drop it: 0.
 */
const ENCODER_DELAY_SAMPLES: Record<AudioEncoding['codec'], number> = { aac: 1600, mp3: 1105, opus: 0 };

/** The encoder's rate: Opus always runs at 48 kHz. */
function encoderRate(a: AudioEncoding): number {
  return a.codec === 'opus' ? 48000 : a.sampleRate;
}

/** The encoder delay above, in µs: the transport writes the audio that much earlier to cancel it. */
export function audioEncoderDelayUs(a: AudioEncoding): number {
  return (ENCODER_DELAY_SAMPLES[a.codec] * 1e6) / encoderRate(a);
}

export function audioBranch(a: AudioEncoding): string {
  const rate = encoderRate(a);
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

/**
 * splitmuxsink cuts a new MPEG-TS fragment at the first keyframe once `segmentDurationS` is reached
 * and asks the encoder for that keyframe (send-keyframe-requests), so segments start exactly on
 * their boundary. It posts `splitmuxsink-fragment-opened/closed` (location, running time) on the
 * bus, which gst-launch -m prints: see parseFragmentMessage.
 */
function segmentSink(s: SegmentSinkPlan): string {
  return `splitmuxsink name=seg muxer-factory=mpegtsmux location=@SEGMENTS@ max-size-time=${Math.round(s.segmentDurationS * 1e9)} send-keyframe-requests=true async-finalize=false`;
}

/**
 * Queue between a tee and one output. Muxers hold one stream while they wait for the other (mp4mux to
 * interleave, splitmuxsink for the next keyframe to cut at): a branch queue that fills then blocks
 * its tee, which starves every other output of that stream, whose muxer then holds the other stream
 * — a deadlock, seen as EOS never completing on a loaded machine with file + HLS. So the branches are
 * bounded by bytes only, generously (encoded media: 256 MB is minutes of skew), not by time.
 */
const BRANCH_QUEUE = 'queue max-size-time=0 max-size-buffers=0 max-size-bytes=268435456';

/** gst-launch-1.0 argv (without the program name) for the plan. */
export function buildLaunchArgs(plan: OutputPipelinePlan): string[] {
  if (!plan.video && !plan.audio) throw new Error('pipeline needs audio or video');
  const sinks: { name: string; desc: string; audioPad: string }[] = [];
  if (plan.file) sinks.push({ name: 'mux', desc: muxer(plan.file), audioPad: 'mux.' });
  if (plan.segments) sinks.push({ name: 'seg', desc: segmentSink(plan.segments), audioPad: 'seg.audio_0' });
  if (plan.stream?.format === 'flv') sinks.push({ name: 'flv', desc: `flvmux name=flv streamable=true ! fdsink fd=${STREAM_FD} sync=false`, audioPad: 'flv.audio' });
  // 7 TS packets per buffer = 1316 bytes, one SRT payload.
  if (plan.stream?.format === 'mpegts') sinks.push({ name: 'ts', desc: `mpegtsmux name=ts alignment=7 ! fdsink fd=${STREAM_FD} sync=false`, audioPad: 'ts.' });
  const images = plan.images ?? [];
  if (sinks.length === 0 && images.length === 0) throw new Error('pipeline needs an output');
  const parts: string[] = sinks.map((s) => s.desc);
  if (plan.encodedVideo && images.length > 0) throw new Error('image outputs need raw video');
  // Thumbnails come from the raw video: a tee before the encoder (no encoder at all for images only).
  if (plan.video && images.length > 0) {
    parts.push(`${rawVideo(plan.video)} ! tee name=rawtee`);
    for (const img of images) parts.push(imageBranch(img, plan.video));
    if (sinks.length > 0) parts.push(`rawtee. ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0 ! ${videoEncoder(plan.video)} ! tee name=vtee`);
  } else if (plan.video && plan.encodedVideo) parts.push(`${encodedVideoBranch()} ! tee name=vtee`);
  else if (plan.video) parts.push(`${videoBranch(plan.video)} ! tee name=vtee`);
  // Encode once: each encoder feeds a tee with one queued branch per output.
  if (plan.video && sinks.length > 0) {
    for (const s of sinks) {
      // MPEG-TS wants Annex B with SPS/PPS before every keyframe (each segment decodes on its own);
      // MP4 keeps the encoder's avc form.
      const ts = s.name === 'seg' || s.name === 'ts' ? ' ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au' : '';
      const pad = s.name === 'seg' ? 'seg.video' : s.name === 'flv' ? 'flv.video' : s.name === 'ts' ? 'ts.' : 'mux.';
      parts.push(`vtee. ! ${BRANCH_QUEUE}${ts} ! ${pad}`);
    }
  }
  if (plan.audio && sinks.length > 0) {
    parts.push(`${audioBranch(plan.audio)} ! tee name=atee`);
    for (const s of sinks) parts.push(`atee. ! ${BRANCH_QUEUE} ! ${s.audioPad}`);
  }
  // Locations are substituted after tokenising so a path with spaces stays one argument
  // (gst-launch escapes each argv element itself). -m prints bus messages (segment boundaries).
  const flags = plan.segments || images.length > 0 ? ['-e', '-m'] : ['-e'];
  return [
    ...flags,
    ...tokens(parts.join(' ')).map((t) => {
      if (t === 'location=@LOCATION@' && plan.file) return `location=${plan.file.location}`;
      if (t === 'location=@SEGMENTS@' && plan.segments) return `location=${plan.segments.locationPattern}`;
      const img = images.find((i) => t === `location=@IMAGES_${i.name}@`);
      if (img) return `location=${img.locationPattern}`;
      return t;
    }),
  ];
}

export interface FragmentMessage {
  readonly kind: 'opened' | 'closed';
  readonly location: string;
  /** Pipeline running time of the fragment boundary, ns. */
  readonly runningTimeNs: bigint;
}

const FRAGMENT_RE = /splitmuxsink-fragment-(opened|closed), location=\(string\)("(?:[^"\\]|\\.)*"|[^,]+), running-time=\(guint64\)(\d+)/;

/** Reads a splitmuxsink fragment message from a gst-launch -m output line (null for other lines). */
export function parseFragmentMessage(line: string): FragmentMessage | null {
  const m = FRAGMENT_RE.exec(line);
  if (!m) return null;
  let location = m[2] as string;
  if (location.startsWith('"')) location = location.slice(1, -1).replace(/\\(.)/g, '$1');
  else location = location.replace(/\\(.)/g, '$1');
  return { kind: m[1] === 'opened' ? 'opened' : 'closed', location, runningTimeNs: BigInt(m[3] as string) };
}

export interface ImageMessage {
  /** multifilesink element name (ImageSinkPlan.name). */
  readonly sink: string;
  readonly filename: string;
  readonly index: number;
  /** Running time of the captured frame, ns. */
  readonly runningTimeNs: bigint;
}

const IMAGE_RE = /from element "([^"]+)" \(element\): GstMultiFileSink, filename=\(string\)("(?:[^"\\]|\\.)*"|[^,]+), index=\(int\)(\d+), timestamp=\(guint64\)\d+, stream-time=\(guint64\)\d+, running-time=\(guint64\)(\d+)/;

/** Reads a multifilesink "file written" message from a gst-launch -m output line. */
export function parseImageMessage(line: string): ImageMessage | null {
  const m = IMAGE_RE.exec(line);
  if (!m) return null;
  let filename = m[2] as string;
  if (filename.startsWith('"')) filename = filename.slice(1, -1);
  filename = filename.replace(/\\(.)/g, '$1');
  return { sink: m[1] as string, filename, index: Number(m[3]), runningTimeNs: BigInt(m[4] as string) };
}

/**
 * gst-launch argv of one SRT publisher: MPEG-TS on stdin, re-aligned to 1316-byte payloads, sent
 * by srtsink in caller mode (a URL nobody listens on fails at once).
 */
export function buildSrtPublisherArgs(url: string): string[] {
  return [
    '-e',
    ...tokens('fdsrc fd=0 blocksize=65536 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=67108864 ! tsparse set-timestamps=true alignment=7 ! srtsink wait-for-connection=false sync=false'),
    `uri=${url}`,
  ];
}

/**
 * gst-launch argv of one RTMP publisher: the FLV stream on stdin, remuxed (no transcoding) and sent
 * to `url` by rtmp2sink. Connecting synchronously makes a refused connection or publish an error at
 * start, which ends the process: that URL failed.
 */
export function buildRtmpPublisherArgs(url: string): string[] {
  return [
    '-e',
    ...tokens('fdsrc fd=0 blocksize=65536 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=67108864 ! flvdemux name=d flvmux name=o streamable=true'),
    ...tokens('! rtmp2sink async-connect=false sync=false'),
    `location=${url}`,
    ...tokens('d.video ! queue ! h264parse ! o.video d.audio ! queue ! aacparse ! o.audio'),
  ];
}
