import { join } from 'node:path';
import { EncodedFileOutput, EncodedFileType } from 'livekit-server-sdk';
import { EncodingOptions, EncodingOptionsPreset, ParticipantEgressRequest, RoomCompositeEgressRequest, StartEgressRequest, TrackCompositeEgressRequest, TrackEgressRequest, WebEgressRequest, MediaSource, ParticipantVideo } from '@livekit/protocol';
import { StaticServer } from '../main/capture/static-server.js';
import { parseConfig } from '../main/config/index.js';
import { setLogLevel } from '../main/log.js';
import { CHROME_FIXED_SHARE, SDK_FIXED_SHARE, costOf, pixelRateRatio, shapeOfOptions, type EgressRequest, type OptionsOneof } from '../main/request/index.js';
import { startRoomEnv } from '../test/room/common.js';
import { TEMPLATES_DIR } from '../test/support/web-egress.js';
import { measure, type Figures, type Starter } from './handler-cpu.js';
import { SDK_STARTERS } from './sdk-starters.js';

/**
 * bench/admission-costs: for each request type and encoding, what an egress really uses — CPU-s per
 * recorded minute of every process of its handler tree, the figure the worker's admission monitor
 * measures once the reservation window is over — beside what the cost model (main/request/cost-model.ts)
 * reserves for it with the default `cpu_cost.*`. At the end, the coefficients the measurements give:
 * each family's 720p30 cores (its `*_cpu_cost` before headroom) and the fixed share that fits its
 * other encodings best. Run it on a quiet machine: the figures are only as good as the machine is idle.
 *
 * Everything runs on the real path on loopback (Redis, livekit-server, our worker, `egress serve`); the
 * worker admits everything (its own costs are set tiny) so that every case runs whatever it would reserve.
 * Web egresses record the demo page; room cases have two publishers (640x360 VP8 + Opus, each in its
 * own process, not counted).
 *
 *   npm run bench:costs -- [--seconds 30] [--types web-720p30,web-1080p60,...] (default: all)
 */

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

type Encoding = EncodingOptionsPreset | EncodingOptions;
type Family = 'web' | 'room' | 'participant' | 'audio' | 'other';

interface Case {
  readonly family: Family;
  /** The request as the worker receives it, for the model's reservation. */
  readonly request: (room: string, url: string) => EgressRequest;
  readonly start: (url: string) => Starter;
  /** Publishers in its room (0: no room). */
  readonly publishers: number;
}

function oneof(e: Encoding): OptionsOneof {
  return typeof e === 'number' ? { case: 'preset', value: e } : { case: 'advanced', value: e };
}

const P = EncodingOptionsPreset;
const P480 = new EncodingOptions({ width: 854, height: 480, framerate: 30 });

function webCase(enc: Encoding, audioOnly = false): Case {
  return {
    family: audioOnly ? 'audio' : 'web',
    publishers: 0,
    request: (_room, url) => ({ case: 'web', value: new WebEgressRequest({ url, audioOnly, options: oneof(enc) }) }),
    start: (url) => (env, room) =>
      env.egress.startWebEgress(url, { file: new EncodedFileOutput(audioOnly ? { filepath: join(env.dir, `${room}.ogg`), fileType: EncodedFileType.OGG } : { filepath: join(env.dir, `${room}.mp4`) }) }, { encodingOptions: enc, audioOnly }),
  };
}

function roomCase(enc: Encoding): Case {
  return {
    family: 'room',
    publishers: 2,
    request: (room) => ({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: room, layout: 'grid', options: oneof(enc) }) }),
    start: () => (env, room) => env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, `${room}.mp4`) }) }, { layout: 'grid', encodingOptions: enc }),
  };
}

function participantCase(enc: Encoding): Case {
  return {
    family: 'participant',
    publishers: 2,
    request: (room) => ({ case: 'participant', value: new ParticipantEgressRequest({ roomName: room, identity: 'p1', options: oneof(enc) }) }),
    start: () => (env, room) => env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, `${room}.mp4`), fileType: EncodedFileType.MP4 }) }, { encodingOptions: enc }),
  };
}

/** A bench:sdk case with the request it sends (for the model). */
function sdkCase(name: string, family: Family, request: (room: string) => EgressRequest): Case {
  const start = SDK_STARTERS[name];
  if (!start) throw new Error(`no SDK starter ${name}`);
  return { family, publishers: 2, request, start: () => start };
}

const CASES: Record<string, Case> = {
  'web-720p30': webCase(P.H264_720P_30),
  'web-480p30': webCase(P480),
  'web-720p60': webCase(P.H264_720P_60),
  'web-1080p30': webCase(P.H264_1080P_30),
  'web-1080p60': webCase(P.H264_1080P_60),
  'web-audio': webCase(P.H264_720P_30, true),
  'room-720p30': roomCase(P.H264_720P_30),
  'room-1080p30': roomCase(P.H264_1080P_30),
  'participant-720p30': participantCase(P.H264_720P_30),
  'participant-1080p30': participantCase(P.H264_1080P_30),
  'track-composite': sdkCase('track-composite', 'other', () => ({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ audioTrackId: 'TR_a', videoTrackId: 'TR_v' }) })),
  media: sdkCase('media', 'other', () => ({ case: 'egress', value: new StartEgressRequest({ source: { case: 'media', value: new MediaSource({ video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p1' }) } }) } }) })),
  'room-audio': sdkCase('room-audio', 'audio', (room) => ({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: room, audioOnly: true }) })),
  'track-audio': sdkCase('track-audio', 'audio', () => ({ case: 'track', value: new TrackEgressRequest() })),
  'track-video': sdkCase('track-video', 'other', () => ({ case: 'track', value: new TrackEgressRequest() })),
};

interface Row {
  name: string;
  family: Family;
  /** width × height × fps relative to 720p30; null for audio-only and passthrough. */
  ratio: number | null;
  measuredCores: number;
  reservedCores: number;
  figures: Figures;
}

function ratioOf(request: EgressRequest): number | null {
  const r = request.case === 'web' || request.case === 'roomComposite' || request.case === 'participant' ? request.value : null;
  if (!r || ('audioOnly' in r && r.audioOnly)) return null;
  const shape = shapeOfOptions(r.options);
  return shape.kind === 'video' ? pixelRateRatio(shape) : null;
}

/**
 * The fixed share F that best fits measured(r) / measured(720p30) = F + (1 − F) r over a family's
 * encodings (least squares; null with the reference alone).
 */
function fitFixedShare(rows: Row[]): { ref: number; fixed: number | null } | null {
  const ref = rows.find((r) => r.ratio === 1);
  if (!ref || ref.measuredCores <= 0) return null;
  let num = 0;
  let den = 0;
  for (const r of rows) {
    if (r.ratio === null || r.ratio === 1) continue;
    num += (1 - r.ratio) * (r.measuredCores / ref.measuredCores - r.ratio);
    den += (1 - r.ratio) ** 2;
  }
  return { ref: ref.measuredCores, fixed: den > 0 ? num / den : null };
}

async function main(): Promise<void> {
  setLogLevel('error');
  const seconds = Number(arg('seconds', '30'));
  const names = arg('types', Object.keys(CASES).join(',')).split(',');
  for (const n of names) if (!CASES[n]) throw new Error(`unknown type ${n} (${Object.keys(CASES).join(', ')})`);
  // The model's reservations with the default cpu_cost.* (what a worker without a cpu_cost section reserves).
  const defaults = parseConfig('');
  const tiny = 0.01;
  const env = await startRoomEnv({
    cpu_cost: {
      max_cpu_utilization: 1,
      room_composite_cpu_cost: tiny,
      audio_room_composite_cpu_cost: tiny,
      web_cpu_cost: tiny,
      audio_web_cpu_cost: tiny,
      participant_cpu_cost: tiny,
      track_composite_cpu_cost: tiny,
      track_cpu_cost: tiny,
    },
  });
  const pages = new StaticServer(TEMPLATES_DIR);
  const url = (await pages.listen()) + 'demo/';
  const rows: Row[] = [];
  try {
    for (const name of names) {
      const c = CASES[name] as Case;
      const request = c.request(`bench-${name}`, url);
      const reservedCores = costOf(request, defaults).cpu;
      let figures: Figures;
      try {
        figures = await measure(env, name, c.start(url), seconds, c.publishers);
      } catch (err) {
        // An encoding this machine cannot hold (e.g. 1080p60 on 2 busy cores ends "pipeline frozen"):
        // say so with what the worker logged about it, and go on with the next case.
        const id = /EG_\w+/.exec(String(err))?.[0] ?? '';
        const said = env.worker.logs().split('\n').filter((l) => id !== '' && l.includes(id) && /error|warn|EGRESS_(FAILED|ABORTED)/.test(l));
        console.log(`${name}: did not complete (${String(err)}); the model reserves ${reservedCores.toFixed(2)} cores${said.length ? `; the worker said:\n    ${said.slice(-4).join('\n    ')}` : ''}`);
        continue;
      }
      const measuredCores = figures.perMinute / 60;
      const ratio = ratioOf(request);
      rows.push({ name, family: c.family, ratio, measuredCores, reservedCores, figures });
      console.log(
        `${name}${ratio !== null ? ` (${ratio.toFixed(2)} × 720p30 pixels/s)` : ''}: ${figures.perMinute.toFixed(1)} CPU-s per recorded minute = ${measuredCores.toFixed(2)} cores ` +
          `(handler ${figures.handlerPerMinute.toFixed(1)}, its children ${figures.gstPerMinute.toFixed(1)}; peak RSS ${figures.peakRssMb.toFixed(0)} MB); ` +
          `the model reserves ${reservedCores.toFixed(2)} cores (${(reservedCores / Math.max(measuredCores, 1e-9)).toFixed(2)} × measured)`,
      );
    }
  } finally {
    await pages.close();
    await env.close();
  }

  console.log('\ncoefficients from this run (set *_cpu_cost = 720p30 cores × your headroom; fixed shares in main/request/cost-model.ts):');
  const current: Partial<Record<Family, number>> = { web: CHROME_FIXED_SHARE, room: CHROME_FIXED_SHARE, participant: SDK_FIXED_SHARE };
  for (const family of ['web', 'room', 'participant'] as const) {
    const fit = fitFixedShare(rows.filter((r) => r.family === family));
    if (!fit) continue;
    console.log(`  ${family}: 720p30 ${fit.ref.toFixed(2)} cores; fixed share ${fit.fixed === null ? 'n/a (measure another encoding)' : fit.fixed.toFixed(2)} (model: ${current[family]})`);
  }
  const cores = (n: string): number | undefined => rows.find((r) => r.name === n)?.measuredCores;
  const share = (a: string, b: string): string => {
    const x = cores(a);
    const y = cores(b);
    return x !== undefined && y !== undefined && y > 0 ? (x / y).toFixed(2) : 'n/a';
  };
  for (const n of ['web-audio', 'room-audio', 'track-audio', 'track-video', 'track-composite', 'media']) {
    const x = cores(n);
    if (x !== undefined) console.log(`  ${n}: ${x.toFixed(2)} cores`);
  }
  console.log(`  audio-only SDK share (track-audio / participant-720p30): ${share('track-audio', 'participant-720p30')}; web-audio / web-720p30: ${share('web-audio', 'web-720p30')}`);
  console.log(JSON.stringify(rows.map(({ figures: _f, ...r }) => r)));
}

await main();
