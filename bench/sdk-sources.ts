import { join } from 'node:path';
import { DirectFileOutput, EgressStatus, EncodedFileOutput, EncodedFileType, FileOutput, MediaSource, Output, ParticipantVideo, StartEgressRequest, type EgressInfo } from 'livekit-server-sdk';
import { AudioChannel, AudioConfig, AudioRoute } from '@livekit/protocol';
import { setLogLevel } from '../main/log.js';
import { CLK_TCK, listProcs, processTree } from '../main/service/proc.js';
import type { PublisherHandle as Publisher } from '../test/support/publisher.js';
import { sleep, startPublishers, startRoomEnv, waitStatus, type RoomEnv } from '../test/room/common.js';

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

interface Figures {
  type: string;
  recordedS: number;
  cpuS: number;
  perMinute: number;
  peakRssMb: number;
  /** CPU-s per recorded minute of the handler (rtc-node, decoders, transport) and of gst-launch. */
  handlerPerMinute: number;
  gstPerMinute: number;
}

type Starter = (env: RoomEnv, room: string, pubs: Publisher[]) => Promise<EgressInfo>;

const TYPES: Record<string, Starter> = {
  'track-audio': (env, room, [p]) => env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'bench-track.ogg') }), p?.trackSids.audio ?? ''),
  'track-video': (env, room, [p]) => env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'bench-track-video') }), p?.trackSids.video ?? ''),
  'track-composite': (env, room, [p]) =>
    env.egress.startTrackCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-tc.mp4') }) }, { audioTrackId: p?.trackSids.audio ?? '', videoTrackId: p?.trackSids.video ?? '' }),
  'room-audio': (env, room) => env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-room-audio.ogg'), fileType: EncodedFileType.OGG }) }, { audioOnly: true }),
  participant: (env, room) => env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-participant.mp4'), fileType: EncodedFileType.MP4 }) }),
  // v2 media: p1's camera, p1's audio on the left and p2's on the right (two decodes, the mixer).
  media: (env, room) =>
    env.egress.startEgress(
      new StartEgressRequest({
        roomName: room,
        source: {
          case: 'media',
          value: new MediaSource({
            video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p1' }) },
            audio: new AudioConfig({
              routes: [new AudioRoute({ match: { case: 'participantIdentity', value: 'p1' }, channel: AudioChannel.LEFT }), new AudioRoute({ match: { case: 'participantIdentity', value: 'p2' }, channel: AudioChannel.RIGHT })],
            }),
          }),
        },
        outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: join(env.dir, 'bench-media.mp4') }) } })],
      }),
    ),
};

async function measure(env: RoomEnv, type: string, start: Starter, seconds: number): Promise<Figures> {
  const room = `bench-${type}`;
  const pubs = await startPublishers(env, room, 2, { video: { codec: 'vp8' } });
  try {
    const info = await start(env, room, pubs);
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
    const pid = env.worker.handlers().get(info.egressId);
    if (!pid) throw new Error('no handler process');
    const maxCpu = new Map<number, number>();
    let peakRss = 0;
    const sample = (): void => {
      const tree = processTree(pid, listProcs());
      peakRss = Math.max(peakRss, tree.reduce((s, p) => s + p.rssBytes, 0));
      for (const p of tree) maxCpu.set(p.pid, Math.max(maxCpu.get(p.pid) ?? 0, p.cpuTicks));
    };
    sample();
    const base = new Map(maxCpu);
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(500);
      sample();
    }
    const recordedS = (Date.now() - t0) / 1000;
    let ticks = 0;
    let handlerTicks = 0;
    for (const [p, t] of maxCpu) {
      ticks += t - (base.get(p) ?? 0);
      if (p === pid) handlerTicks += t - (base.get(p) ?? 0);
    }
    await env.egress.stopEgress(info.egressId);
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
    const cpuS = ticks / CLK_TCK;
    const perMin = (t: number): number => (t / CLK_TCK / recordedS) * 60;
    return { type, recordedS, cpuS, perMinute: (cpuS / recordedS) * 60, peakRssMb: peakRss / 1e6, handlerPerMinute: perMin(handlerTicks), gstPerMinute: perMin(ticks - handlerTicks) };
  } finally {
    await Promise.all(pubs.map((p) => p.stop()));
  }
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
