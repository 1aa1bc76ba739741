import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressStatus, EncodedFileOutput, ImageOutput, SegmentedFileOutput, StreamInfo_Status, StreamOutput, StreamProtocol, WebEgressRequest } from '@livekit/protocol';
import { parseConfig } from '../main/config/index.js';
import type { StartEgressEnvelope } from '../main/request/index.js';
import { StaticServer } from '../main/capture/static-server.js';
import { createWebEgress } from '../main/egress/create-web-egress.js';
import { newEgressId } from '../main/egress/ids.js';
import { setLogLevel } from '../main/log.js';
import { startRtmpServer } from '../test/harness/rtmp.js';
import { GroupCpuMeter } from './proc-cpu.js';

/**
 * bench/multi-output: CPU seconds per recorded minute of a web egress (every process: Chromium,
 * gst-launch, RTMP publishers, this Node process's share) recording the file alone, then file + HLS
 * + RTMP + images together. One encode feeds every output, so the second should cost about the same.
 *
 *   node dist/bench/multi-output.js [--seconds 60] [--rounds 1]
 *
 * Needs nginx + libnginx-mod-rtmp (scripts/setup.sh --test) for the RTMP destination.
 */

const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), '../../templates');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

async function runOne(label: string, request: WebEgressRequest, seconds: number, dir: string): Promise<{ label: string; recordedS: number; cpuS: number; perMinute: number }> {
  const config = parseConfig(`tmp_dir: ${join(dir, 'tmp')}\n`);
  const envelope: StartEgressEnvelope = { egressId: newEgressId(), request: { case: 'web', value: request } };
  const { controller: c } = createWebEgress(envelope, config, { localBaseDir: dir });
  const meter = new GroupCpuMeter();
  const nodeStart = process.cpuUsage();
  const sampler = setInterval(() => {
    for (const pid of c.pids()) meter.follow(pid);
    meter.sample();
  }, 250);
  c.on('update', (i) => {
    if (i.status === EgressStatus.EGRESS_ACTIVE && i.fileResults[0]) {
      const first = Number(i.fileResults[0].startedAt) / 1e6;
      setTimeout(() => c.stop(), first + seconds * 1000 - Date.now());
    }
  });
  const info = await c.run();
  clearInterval(sampler);
  meter.sample();
  const node = process.cpuUsage(nodeStart);
  if (info.status !== EgressStatus.EGRESS_COMPLETE) throw new Error(`${label}: ${EgressStatus[info.status]} ${info.error}`);
  const recordedS = Number(info.fileResults[0]?.duration ?? 0n) / 1e9;
  const cpuS = meter.total() + (node.user + node.system) / 1e6;
  const outputs = [
    `file ${info.fileResults.length}`,
    `segments ${info.segmentResults[0]?.segmentCount ?? 0}`,
    `streams ${info.streamResults.map((s) => StreamInfo_Status[s.status]).join("/") || "-"}`,
    `images ${info.imageResults[0]?.imageCount ?? 0}`,
  ].join(', ');
  process.stdout.write(`# ${label}: ${outputs}\n`);
  return { label, recordedS, cpuS, perMinute: (cpuS / recordedS) * 60 };
}

async function main(): Promise<void> {
  setLogLevel('warn');
  const seconds = Number(arg('seconds', '60'));
  const rounds = Number(arg('rounds', '1'));
  const dir = await mkdtemp(join(tmpdir(), 'egress-bench-multi-'));
  const pages = new StaticServer(TEMPLATES);
  const base = await pages.listen();
  const rtmp = await startRtmpServer();
  try {
    const results: { label: string; perMinute: number; cpuS: number; recordedS: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      const fileOnly = new WebEgressRequest({ url: `${base}demo/`, fileOutputs: [new EncodedFileOutput({ filepath: join(dir, `r${r}-file/`) })] });
      const all = new WebEgressRequest({
        url: `${base}demo/`,
        fileOutputs: [new EncodedFileOutput({ filepath: join(dir, `r${r}-all/`) })],
        segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: join(dir, `r${r}-hls/seg`), playlistName: 'pl.m3u8', livePlaylistName: 'live.m3u8' })],
        streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [`${rtmp.liveUrl}bench${r}key`] })],
        imageOutputs: [new ImageOutput({ captureInterval: 10, filenamePrefix: join(dir, `r${r}-img/thumb`) })],
      });
      results.push(await runOne('file alone', fileOnly, seconds, dir));
      results.push(await runOne('file + HLS + RTMP + images', all, seconds, dir));
    }
    for (const label of ['file alone', 'file + HLS + RTMP + images']) {
      const mine = results.filter((x) => x.label === label);
      const per = mine.map((x) => x.perMinute);
      const mean = per.reduce((a, b) => a + b, 0) / per.length;
      process.stdout.write(`${label}: ${mean.toFixed(1)} CPU-s per recorded minute (runs: ${mine.map((x) => `${x.perMinute.toFixed(1)} [${x.cpuS.toFixed(1)} CPU-s / ${x.recordedS.toFixed(1)} s]`).join(', ')})\n`);
    }
    const a = results.filter((x) => x.label === 'file alone').reduce((s, x) => s + x.perMinute, 0);
    const b = results.filter((x) => x.label !== 'file alone').reduce((s, x) => s + x.perMinute, 0);
    process.stdout.write(`all outputs vs file alone: ${(((b - a) / a) * 100).toFixed(1)} %\n`);
  } finally {
    await rtmp.stop();
    await pages.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
