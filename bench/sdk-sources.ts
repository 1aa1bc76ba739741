import { setLogLevel } from '../main/log.js';
import { startRoomEnv } from '../test/room/common.js';
import { measure, type Figures } from './handler-cpu.js';
import { SDK_STARTERS as TYPES } from './sdk-starters.js';

/**
 * bench/sdk-sources: CPU seconds per recorded minute and peak RSS of every process of an SDK-source
 * egress (the handler process — which holds the rtc-node room connection and decoders — and its
 * children: gst-launch, and for a video track egress the Chromium that reads its encoded frames),
 * for each request type, on the real path (livekit-server → Redis → worker).
 * The publishers (two 640x360 VP8 + Opus, rtc-node, in this process) are not counted.
 *
 *   npm run bench:sdk -- [--seconds 60] [--types track-audio,track-video,track-composite,room-audio,participant,media]
 */

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

async function main(): Promise<void> {
  setLogLevel('error');
  const seconds = Number(arg('seconds', '60'));
  const types = arg('types', Object.keys(TYPES).join(',')).split(',');
  const env = await startRoomEnv({ cpu_cost: { max_cpu_utilization: 1, track_cpu_cost: 0.01, track_composite_cpu_cost: 0.01, participant_cpu_cost: 0.01 } });
  const rows: Figures[] = [];
  try {
    for (const t of types) {
      const start = TYPES[t];
      if (!start) throw new Error(`unknown type ${t} (${Object.keys(TYPES).join(', ')})`);
      const f = await measure(env, t, start, seconds);
      rows.push(f);
      console.log(`${f.type}: ${f.cpuS.toFixed(1)} CPU-s over ${f.recordedS.toFixed(0)} s = ${f.perMinute.toFixed(2)} CPU-s per recorded minute (handler ${f.handlerPerMinute.toFixed(2)}, its children — gst-launch, and Chromium for track-video — ${f.gstPerMinute.toFixed(2)}), peak RSS ${f.peakRssMb.toFixed(0)} MB`);
    }
  } finally {
    await env.close();
  }
  console.log(JSON.stringify(rows));
}

await main();
