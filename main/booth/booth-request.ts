import { isAbsolute, join } from 'node:path';
import { EncodedFileOutput, EncodedFileType, EncodingOptionsPreset, RoomCompositeEgressRequest, SegmentedFileOutput, StreamOutput, StreamProtocol, WebEgressRequest } from '@livekit/protocol';
import type { ServiceConfig } from '../config/index.js';
import { EgressError } from '../contracts/errors.js';
import type { BoothStart } from '../contracts/ipc.js';
import type { StartEgressEnvelope } from '../request/index.js';

/**
 * Turns the booth's start form into the same request the standalone recorder (`egress record`)
 * sends: a WebEgressRequest, or a RoomCompositeEgressRequest through a template — so validation,
 * texts and outputs are the product's own. Returns the config to run it with (credentials, storage
 * choice) too.
 */

export interface BoothRequestContext {
  readonly egressId: string;
  /** The bundled demo page, for a web source without URL. */
  readonly demoUrl: string;
  /** The room template base (built-in template server), for a room source. */
  readonly templateBase: string;
  /** Local recordings folder when the form names none. */
  readonly recordingsDir: string;
}

const FILE_TYPES = { mp4: EncodedFileType.MP4, ogg: EncodedFileType.OGG, mp3: EncodedFileType.MP3 } as const;

/** A folder as given, made absolute against the recordings folder, ending in `/`. */
function localDir(folder: string, recordingsDir: string): string {
  const dir = folder === '' ? recordingsDir : isAbsolute(folder) ? folder : join(recordingsDir, folder);
  return dir.endsWith('/') ? dir : `${dir}/`;
}

export function boothEnvelope(start: BoothStart, baseConfig: ServiceConfig, ctx: BoothRequestContext): { envelope: StartEgressEnvelope; config: ServiceConfig } {
  const out = start.outputs;
  let config: ServiceConfig = baseConfig;
  let filepath: string;
  if (out.destination === 'storage') {
    if (!baseConfig.storage) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'no storage is configured (add a storage: section to the config file), choose a local folder');
    // With storage the path is the object key: `{folder}/` + the original's default name.
    filepath = out.folder === '' ? '' : out.folder.endsWith('/') ? out.folder : `${out.folder}/`;
  } else {
    // A local folder: the file stays on this machine even when the config names a storage.
    const { storage: _storage, ...rest } = baseConfig;
    config = rest;
    filepath = localDir(out.folder, ctx.recordingsDir);
  }
  const fileOutputs = [new EncodedFileOutput({ fileType: FILE_TYPES[out.fileType], filepath })];
  const segmentOutputs = out.hlsDir === '' ? [] : [new SegmentedFileOutput({ playlistName: `${localDir(out.hlsDir, ctx.recordingsDir)}playlist.m3u8`, livePlaylistName: `${localDir(out.hlsDir, ctx.recordingsDir)}live.m3u8`, segmentDuration: 4 })];
  const streamOutputs = out.rtmpUrl === '' ? [] : [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [out.rtmpUrl] })];
  const options = { case: 'preset' as const, value: EncodingOptionsPreset[start.preset] };
  const common = { audioOnly: start.audioOnly, videoOnly: start.videoOnly, options, fileOutputs, segmentOutputs, streamOutputs };
  const src = start.source;
  if (src.kind === 'room') {
    config = {
      ...config,
      api_key: src.apiKey || config.api_key,
      api_secret: src.apiSecret || config.api_secret,
      ws_url: src.serverUrl,
      template_base: ctx.templateBase,
    };
    if (src.token === '' && (config.api_key === '' || config.api_secret === '')) {
      throw new EgressError('E_INVALID_INPUT', 'invalid_argument', 'a room needs an API key and secret, or a token');
    }
    const request = new RoomCompositeEgressRequest({ roomName: src.roomName, layout: src.layout, ...common });
    return { envelope: { egressId: ctx.egressId, request: { case: 'roomComposite', value: request }, roomName: src.roomName, token: src.token, wsUrl: src.serverUrl }, config };
  }
  const request = new WebEgressRequest({ url: src.url || ctx.demoUrl, awaitStartSignal: src.awaitStartSignal, ...common });
  return { envelope: { egressId: ctx.egressId, request: { case: 'web', value: request } }, config };
}

/** What the booth lists as the source: the page URL (the demo page by name), or `room <name>`. */
export function describeSource(start: BoothStart): string {
  if (start.source.kind === 'room') return `room ${start.source.roomName}`;
  return start.source.url || 'demo page';
}
