import { spawn } from 'node:child_process';
import { audioBranch, videoBranch, type AudioEncoding, type VideoEncoding } from '../gst/output-pipeline.js';

/**
 * The floor every bench prints beside its figure: what the same encoder settings cost on generated
 * frames alone (no capture, no page), measured in the same run on the same machine.
 */
/** CPU seconds of gst-launch encoding `seconds` of generated video+audio with the egress's settings. */
export async function floorCpu(video: VideoEncoding, audio: AudioEncoding, seconds: number, out: string): Promise<number> {
  const frames = seconds * video.framerate;
  const v = videoBranch(video).replace(/^fdsrc .*? ! gdpdepay !/, `videotestsrc num-buffers=${frames} pattern=ball ! video/x-raw,format=I420,width=${video.width},height=${video.height},framerate=${video.framerate}/1 !`);
  const a = audioBranch(audio).replace(/^fdsrc .*? ! gdpdepay !/, `audiotestsrc num-buffers=${Math.ceil((seconds * 48000) / 1024)} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2,format=F32LE !`);
  const desc = `mp4mux name=mux ! filesink location=${out} ${v} ! mux. ${a} ! mux.`;
  // bash's `times` prints the CPU time of its finished children exactly (user and system).
  const script = `gst-launch-1.0 -q ${desc.split(/\s+/).map((t) => `'${t}'`).join(' ')} >/dev/null && times`;
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let printed = '';
  child.stdout.on('data', (d: Buffer) => (printed += d.toString()));
  const code = await new Promise((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`floor pipeline failed (${String(code)})`);
  const children = printed.trim().split('\n')[1] ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return secs.reduce((a, b) => a + b, 0);
}

