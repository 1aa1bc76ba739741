#!/usr/bin/env node
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EncodedFileOutput, EncodedFileType, EncodingOptionsPreset, ImageOutput, RoomCompositeEgressRequest, SegmentedFileOutput, StreamOutput, StreamProtocol, WebEgressRequest, type EgressInfo } from '@livekit/protocol';
import { EgressError, toEgressError } from './contracts/errors.js';
import { loadConfig, type ServiceConfig } from './config/index.js';
import type { StartEgressEnvelope } from './request/index.js';
import { StaticServer } from './capture/static-server.js';
import { startTemplateServer } from './capture/template-server.js';
import { createWebEgress } from './egress/create-web-egress.js';
import { newEgressId } from './egress/ids.js';
import { statusName } from './egress/status.js';
import log, { setLogLevel } from './log.js';

/**
 * The `egress` command. Subcommands:
 *   record  — a standalone egress (no Redis): records a web page (with no --url, a bundled demo
 *             page) or, with --room, a whole LiveKit room through a template, to a file, and prints
 *             the final EgressInfo as JSON on stdout's last line.
 *   serve   — the worker: takes egress jobs from livekit-server over Redis (main/service).
 *   console — the recording booth served over HTTP (main/booth), for a headless appliance.
 *   app     — the recording booth as an Electron desktop app (main/electron/app.ts).
 */

const USAGE = `usage: egress record [--url URL] [--duration S] [--out DIR|FILE] [--preset NAME]
                     [--audio-only|--video-only] [--await-start-signal] [--config FILE] [--quiet]
                     [--hls DIR/ [--segment-duration S]] [--images DIR/ [--image-interval S]]
                     [--rtmp URL]... [--srt URL]
       egress record --room NAME --url WS_URL (--api-key K --api-secret S | --token JWT)
                     [--layout grid|speaker|single-speaker[-light]] [--base-url URL]
                     [--duration S] [--out DIR|FILE] [--preset NAME] [--audio-only|--video-only]
       egress serve  [--config FILE | --config-body YAML]   (or EGRESS_CONFIG_FILE / EGRESS_CONFIG_BODY)
       egress console [--port 7990] [--bind 127.0.0.1] [--config FILE] [--config-dir DIR]
                      [--recordings-dir DIR]
       egress app    (the same booth as a desktop app; needs the Electron binary)

  With --room, --url is the LiveKit server (ws:// or wss://) and the whole room is recorded through
  a template (default: the built-in one); --duration defaults to 0 there: until the room closes or
  SIGINT/SIGTERM. API key/secret also come from --config or LIVEKIT_API_KEY / LIVEKIT_API_SECRET.

  While recording, SIGUSR1 pauses and SIGUSR2 resumes: nothing is written while paused and the file
  goes on seamlessly (its duration leaves the pauses out; --duration counts wall-clock time).

  --hls DIR/ also writes HLS from the same encode: DIR/playlist.m3u8 (every segment), DIR/live.m3u8
  (the newest 5) and DIR/playlist_NNNNN.ts, each segment stored as soon as it is complete.
  --images DIR/ also stores a JPEG thumbnail every --image-interval seconds (default 10) as
  DIR/image_NNNNN.jpeg, each as soon as it is taken.
  --rtmp URL (repeatable) goes live to each URL (rtmp(s)://host/app/key) from the same encode;
  --srt URL goes live over SRT (srt://host:port?streamid=...) instead.

  console serves the recording booth (web page or room; pause/resume; past recordings) to a browser:
  it prints a URL with an access token, made at the first start and kept in the config dir
  ($EGRESS_CONFIG_DIR, else $XDG_CONFIG_HOME/egress, else ~/.config/egress). It binds loopback
  unless --bind says otherwise. Local recordings go to --recordings-dir (default $EGRESS_RECORDINGS_DIR,
  else ~/Videos/egress). See docs/booth.md.`;

const TEMPLATES_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../templates');

function fileTypeOf(out: string | undefined): EncodedFileType {
  const ext = out?.toLowerCase().match(/\.(mp4|ogg|mp3)$/)?.[1];
  return ext === 'mp4' ? EncodedFileType.MP4 : ext === 'ogg' ? EncodedFileType.OGG : ext === 'mp3' ? EncodedFileType.MP3 : EncodedFileType.DEFAULT_FILETYPE;
}

function presetOf(name: string | undefined): EncodingOptionsPreset {
  if (name === undefined) return EncodingOptionsPreset.H264_720P_30;
  const value = (EncodingOptionsPreset as unknown as Record<string, number>)[name.toUpperCase()];
  if (value === undefined || name.toUpperCase() === 'PASSTHROUGH') {
    throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `unknown preset ${name} (one of ${Object.keys(EncodingOptionsPreset).filter((k) => Number.isNaN(Number(k)) && k !== 'PASSTHROUGH').join(', ')})`);
  }
  return value;
}

/**
 * `--out DIR/` or an existing directory → that directory with the default name; else a file path.
 * The path is kept as given: with cloud storage it is the object key; with local storage a relative
 * path is relative to the working directory.
 */
function filepathOf(out: string | undefined): string {
  if (!out) return '';
  if (!out.endsWith('/') && existsSync(out) && statSync(out).isDirectory()) return out + '/';
  return out;
}

/** `--hls DIR/`: playlist, live playlist and segments in DIR (a path without `/` is a directory too). */
function hlsOutput(dir: string, segmentDuration: string | undefined): SegmentedFileOutput {
  const d = dir === '' || dir.endsWith('/') ? dir : `${dir}/`;
  const seconds = segmentDuration === undefined ? 4 : Number(segmentDuration);
  if (!Number.isInteger(seconds) || seconds < 1) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `invalid --segment-duration ${segmentDuration}`);
  return new SegmentedFileOutput({ playlistName: `${d}playlist.m3u8`, livePlaylistName: `${d}live.m3u8`, segmentDuration: seconds });
}

/** `--images DIR/`: `DIR/image_NNNNN.jpeg` every `interval` seconds. */
function imagesOutput(dir: string, interval: string | undefined): ImageOutput {
  const d = dir === '' || dir.endsWith('/') ? dir : `${dir}/`;
  const seconds = interval === undefined ? 10 : Number(interval);
  if (!Number.isInteger(seconds) || seconds < 1) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `invalid --image-interval ${interval}`);
  return new ImageOutput({ filenamePrefix: `${d}image`, captureInterval: seconds });
}

async function record(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string' },
      preset: { type: 'string' },
      'audio-only': { type: 'boolean', default: false },
      'video-only': { type: 'boolean', default: false },
      'await-start-signal': { type: 'boolean', default: false },
      config: { type: 'string' },
      room: { type: 'string' },
      layout: { type: 'string', default: '' },
      'base-url': { type: 'string', default: '' },
      'api-key': { type: 'string' },
      'api-secret': { type: 'string' },
      token: { type: 'string', default: '' },
      quiet: { type: 'boolean', default: false },
      hls: { type: 'string' },
      'segment-duration': { type: 'string' },
      images: { type: 'string' },
      rtmp: { type: 'string', multiple: true },
      srt: { type: 'string', multiple: true },
      'image-interval': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.quiet) setLogLevel('warn');
  const room = values.room;
  const durationS = values.duration === undefined ? (room !== undefined ? 0 : 10) : Number(values.duration);
  if (!Number.isFinite(durationS) || durationS < 0) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `invalid --duration ${values.duration}`);

  let config: ServiceConfig = loadConfig({ configFile: values.config, requireConfig: false });
  const servers: { close(): Promise<void> }[] = [];
  try {
    const options = { case: 'preset' as const, value: presetOf(values.preset) };
    const fileOutputs = [new EncodedFileOutput({ fileType: fileTypeOf(values.out), filepath: filepathOf(values.out) })];
    const segmentOutputs = values.hls === undefined ? [] : [hlsOutput(values.hls, values['segment-duration'])];
    const imageOutputs = values.images === undefined ? [] : [imagesOutput(values.images, values['image-interval'])];
    const rtmpUrls = values.rtmp ?? [];
    const srtUrls = values.srt ?? [];
    // One stream output per request: RTMP or SRT.
    if (rtmpUrls.length > 0 && srtUrls.length > 0) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', '--rtmp and --srt cannot be combined (one stream output per egress)');
    const streamOutputs =
      rtmpUrls.length > 0
        ? [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: rtmpUrls })]
        : srtUrls.length > 0
          ? [new StreamOutput({ protocol: StreamProtocol.SRT, urls: srtUrls })]
          : [];
    let envelope: StartEgressEnvelope;
    if (room !== undefined) {
      config = {
        ...config,
        api_key: values['api-key'] ?? config.api_key,
        api_secret: values['api-secret'] ?? config.api_secret,
        ws_url: values.url ?? config.ws_url,
      };
      if (values['base-url'] === '') {
        const templates = await startTemplateServer(config, { movable: true });
        servers.push(templates);
        config = { ...config, template_base: templates.baseUrl };
      }
      const request = new RoomCompositeEgressRequest({
        roomName: room,
        layout: values.layout,
        customBaseUrl: values['base-url'],
        audioOnly: values['audio-only'],
        videoOnly: values['video-only'],
        options,
        fileOutputs,
        segmentOutputs,
        imageOutputs,
        streamOutputs,
      });
      envelope = { egressId: newEgressId(), request: { case: 'roomComposite', value: request }, roomName: room, token: values.token, wsUrl: config.ws_url };
    } else {
      let url = values.url;
      if (!url) {
        const demo = new StaticServer(TEMPLATES_DIR);
        servers.push(demo);
        url = (await demo.listen()) + 'demo/';
      }
      const request = new WebEgressRequest({
        url,
        audioOnly: values['audio-only'],
        videoOnly: values['video-only'],
        awaitStartSignal: values['await-start-signal'],
        options,
        fileOutputs,
        segmentOutputs,
        imageOutputs,
        streamOutputs,
      });
      envelope = { egressId: newEgressId(), request: { case: 'web', value: request } };
    }
    // Relative local paths are relative to where the command runs.
    const { controller } = createWebEgress(envelope, config, { localBaseDir: process.cwd() });
    let stopTimer: NodeJS.Timeout | undefined;
    controller.on('update', (i: EgressInfo) => {
      process.stderr.write(`egress ${i.egressId}: ${statusName(i.status)}${i.error ? ` (${i.error})` : ''}${i.details ? ` — ${i.details}` : ''}\n`);
      if (statusName(i.status) === 'EGRESS_ACTIVE' && durationS > 0 && !stopTimer) {
        // Count the duration from the recording's first frame, not from the ACTIVE update.
        const startedMs = Number(i.fileResults[0]?.startedAt ?? 0n) / 1e6 || Date.now();
        stopTimer = setTimeout(() => controller.stop('StopEgress API'), Math.max(0, startedMs + durationS * 1000 - Date.now()));
      }
    });
    controller.on('progress', ({ elapsedMs, bytes }) => {
      process.stderr.write(`recording: ${(elapsedMs / 1000).toFixed(0)} s, ${(bytes / 1e6).toFixed(2)} MB written\n`);
    });
    const onSignal = (): void => void controller.stop('Process killed');
    const onPause = (): void => void (controller.pause() || process.stderr.write('pause ignored: not recording, or already paused\n'));
    const onResume = (): void => void (controller.resume() || process.stderr.write('resume ignored: not paused\n'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.on('SIGUSR1', onPause);
    process.on('SIGUSR2', onResume);
    const final = await controller.run();
    clearTimeout(stopTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGUSR1', onPause);
    process.off('SIGUSR2', onResume);
    process.stdout.write(JSON.stringify(final.toJson()) + '\n');
    return statusName(final.status) === 'EGRESS_COMPLETE' ? 0 : 1;
  } finally {
    for (const s of servers) await s.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'record':
        return await record(rest);
      // Loaded on demand: the standalone recorder needs neither Redis nor the worker.
      case 'serve': {
        const code = await (await import('./service/serve.js')).serve(rest);
        // The worker has drained: a library timer left behind (ioredis, prom-client) must not keep
        // the process alive.
        setTimeout(() => process.exit(code), 2000).unref();
        return code;
      }
      case 'console':
        return await (await import('./booth/console.js')).runConsole(rest);
      case 'app':
        return await (await import('./booth/app-launcher.js')).runApp(rest);
      case undefined:
      case '--help':
      case 'help':
        process.stdout.write(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        process.stderr.write(`unknown command ${cmd}\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    const e = toEgressError(err);
    log.error(e.message);
    // Same shape as a failed EgressInfo, so scripts can read one JSON line either way.
    process.stdout.write(JSON.stringify({ status: 'EGRESS_FAILED', error: e.message, errorCode: e.httpStatus }) + '\n');
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
