import { spawn } from 'node:child_process';
import { audioBranch, videoBranch, type AudioEncoding, type VideoEncoding } from '../gst/output-pipeline.js';
import { ChromiumHost } from '../main/capture/chromium-host.js';
import { newEgressId } from '../main/egress/ids.js';
import { GroupCpuMeter } from './proc-cpu.js';

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


/**
 * The render floor: CPU seconds the same browser, with the same flags and the same viewport, uses
 * showing `url` for `seconds` with no capture at all — what the page costs to render. Ours minus
 * this minus the encoder floor is what capturing and moving the frames costs.
 */
export async function renderFloorCpu(
  url: string,
  size: { width: number; height: number; framerate: number },
  seconds: number,
  workDir: string,
  extraFlags: Readonly<Record<string, string>> = {},
): Promise<{ cpuS: number; roles: { role: string; cpuS: number }[] }> {
  const host = new ChromiumHost({ ...size, workDir, egressId: newEgressId(), insecure: false, sandbox: false, extraFlags });
  const meter = new GroupCpuMeter();
  try {
    await host.open(url);
    for (const pid of host.pids()) meter.follow(pid);
    meter.sample();
    const start = meter.total();
    const startRoles = new Map(meter.byRole().map((r) => [r.role, r.cpuS]));
    const sampler = setInterval(() => meter.sample(), 500);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    clearInterval(sampler);
    meter.sample();
    const roles = meter.byRole().map((r) => ({ role: r.role, cpuS: r.cpuS - (startRoles.get(r.role) ?? 0) }));
    return { cpuS: meter.total() - start, roles };
  } finally {
    await host.close();
  }
}
