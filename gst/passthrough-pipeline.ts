import { VIDEO_FD } from './output-pipeline.js';

/**
 * gst-launch arguments that write a track's ENCODED video into its container without decoding,
 * as the original does: VP8 / VP9 → WebM, H264 → MP4. The input is GDP on VIDEO_FD carrying the
 * frames as the publisher sent them, keyframe-gated and stamped (main/sdk/passthrough-writer.ts).
 */

export type PassthroughVideoCodec = 'vp8' | 'vp9' | 'h264';

/** MP4 is written in 1 s fragments (as the encoded MP4 outputs are): a crash leaves a playable file. */
const MP4_FRAGMENT_MS = 1000;

export function passthroughContainerOf(codec: PassthroughVideoCodec): 'webm' | 'mp4' {
  return codec === 'h264' ? 'mp4' : 'webm';
}

export function buildPassthroughArgs(codec: PassthroughVideoCodec, location: string): string[] {
  const src = ['fdsrc', `fd=${VIDEO_FD}`, 'blocksize=1048576', '!', 'gdpdepay', '!'];
  const queue = ['queue', 'max-size-buffers=0', 'max-size-bytes=0', 'max-size-time=10000000000', '!'];
  const sink = ['filesink', `location=${location}`, 'sync=false'];
  switch (codec) {
    case 'h264':
      return ['-e', ...src, 'h264parse', '!', 'video/x-h264,stream-format=avc,alignment=au', '!', ...queue, 'mp4mux', `fragment-duration=${MP4_FRAGMENT_MS}`, '!', ...sink];
    case 'vp9':
      return ['-e', ...src, 'vp9parse', '!', ...queue, 'webmmux', '!', ...sink];
    case 'vp8':
      return ['-e', ...src, ...queue, 'webmmux', '!', ...sink];
  }
}

/** The GDP caps of the first keyframe (width/height as the publisher coded them; 0 = unknown). */
export function passthroughCaps(codec: PassthroughVideoCodec, width: number, height: number): string {
  const size = width > 0 && height > 0 ? `, width=(int)${width}, height=(int)${height}` : '';
  switch (codec) {
    case 'h264':
      return `video/x-h264, stream-format=(string)byte-stream, alignment=(string)au${size}, framerate=(fraction)0/1`;
    case 'vp9':
      return `video/x-vp9${size}, framerate=(fraction)0/1`;
    case 'vp8':
      return `video/x-vp8${size}, framerate=(fraction)0/1`;
  }
}

/** The codec of a track's mime type (`video/VP8` …), or null when it cannot be written as is. */
export function passthroughCodecOf(mime: string): PassthroughVideoCodec | null {
  switch (mime.toLowerCase()) {
    case 'video/vp8':
      return 'vp8';
    case 'video/vp9':
      return 'vp9';
    case 'video/h264':
      return 'h264';
    default:
      return null;
  }
}
