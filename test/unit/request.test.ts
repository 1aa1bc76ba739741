import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AudioChannel,
  AudioCodec,
  AudioConfig,
  AudioRoute,
  MediaSource,
  ParticipantVideo,
  EncodedFileOutput,
  EncodedFileType,
  EncodingOptions,
  EncodingOptionsPreset,
  FileOutput,
  ImageFileSuffix,
  ImageOutput,
  Output,
  RoomCompositeEgressRequest,
  S3Upload,
  SegmentedFileOutput,
  StartEgressRequest,
  StorageConfig,
  StreamOutput,
  StreamProtocol,
  TemplateSource,
  TrackEgressRequest,
  VideoCodec,
  WebEgressRequest,
  WebSource,
  ImageCodec,
} from '@livekit/protocol';
import type { PartialMessage } from '@bufbuild/protobuf';
import { EgressError } from '../../main/contracts/errors.js';
import { DEFAULT_AUDIO_WEB_CPU_COST, parseConfig, type ServiceConfig } from '../../main/config/index.js';
import {
  buildPipelinePlan,
  costOf,
  redactIdentifier,
  redactRequest,
  requestTypeOf,
  validateStreamUrl,
  type EgressRequest,
  type StartEgressEnvelope,
} from '../../main/request/index.js';

const NOW = new Date(2022, 9, 4, 1, 13, 6, 789);
const TIME = '2022-10-04T011306';
const config = parseConfig('tmp_dir: /tmp/egress-test\n');

function web(fields: PartialMessage<WebEgressRequest>): EgressRequest {
  return { case: 'web', value: new WebEgressRequest({ url: 'https://example.com/page', ...fields }) };
}
function v2(fields: PartialMessage<StartEgressRequest>): EgressRequest {
  return {
    case: 'egress',
    value: new StartEgressRequest({ source: { case: 'web', value: new WebSource({ url: 'https://example.com/page' }) }, ...fields }),
  };
}
const mp4 = (filepath = '', fileType = EncodedFileType.DEFAULT_FILETYPE): EncodedFileOutput => new EncodedFileOutput({ filepath, fileType });
const out = (config: Output['config'], storage?: StorageConfig): Output => new Output({ config, ...(storage ? { storage } : {}) });
const fileOut = (filepath = '', fileType = EncodedFileType.DEFAULT_FILETYPE): Output =>
  out({ case: 'file', value: new FileOutput({ filepath, fileType }) });
const advanced = (f: PartialMessage<EncodingOptions>): { case: 'advanced'; value: EncodingOptions } => ({
  case: 'advanced',
  value: new EncodingOptions(f),
});

function build(request: EgressRequest, extra: Partial<StartEgressEnvelope> = {}, conf: ServiceConfig = config) {
  return buildPipelinePlan({ egressId: 'EG_test', request, ...extra }, conf, NOW);
}

function rejects(request: EgressRequest, message: string, extra: Partial<StartEgressEnvelope> = {}, conf: ServiceConfig = config): void {
  assert.throws(
    () => build(request, extra, conf),
    (e: unknown) => {
      assert.ok(e instanceof EgressError, `not an EgressError: ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

const F = (field: string): string => `request has missing or invalid field: ${field}`;

test('validation rules for web egress: exact texts (one case per rule)', () => {
  const rtmpOnly = (urls: string[], protocol = StreamProtocol.DEFAULT_PROTOCOL) => web({ streamOutputs: [new StreamOutput({ protocol, urls })] });
  const cases: [string, EgressRequest, string, Partial<StartEgressEnvelope>?][] = [
    ['egressID', web({ fileOutputs: [mp4()] }), F('egressID'), { egressId: '' }],
    ['request', { case: undefined }, F('request')],
    ['web url scheme', web({ url: 'ftp://example.com', fileOutputs: [mp4()] }), F('web url')],
    ['web url garbage', web({ url: 'not a url', fileOutputs: [mp4()] }), F('web url')],
    ['audio_only and video_only', web({ audioOnly: true, videoOnly: true, fileOutputs: [mp4()] }), F('audio_only and video_only')],
    ['width < 16', web({ options: advanced({ width: 14 }), fileOutputs: [mp4()] }), F('width')],
    ['width odd', web({ options: advanced({ width: 1281 }), fileOutputs: [mp4()] }), F('width')],
    ['height odd', web({ options: advanced({ height: 721 }), fileOutputs: [mp4()] }), F('height')],
    ['depth', web({ options: advanced({ depth: 12 }), fileOutputs: [mp4()] }), F('depth')],
    ['VP8', web({ options: advanced({ videoCodec: VideoCodec.VP8 }), fileOutputs: [mp4()] }), 'VP8 encoding is not yet supported'],
    ['passthrough preset (v1)', web({ options: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, fileOutputs: [mp4()] }), F('preset')],
    ['multiple file outputs', web({ fileOutputs: [mp4(), mp4()] }), F('multiple file outputs')],
    ['multiple stream outputs', web({ streamOutputs: [new StreamOutput({ urls: ['srt://a:1'] }), new StreamOutput({ urls: ['srt://b:1'] })] }), F('multiple stream outputs')],
    ['multiple segmented file outputs', web({ segmentOutputs: [new SegmentedFileOutput(), new SegmentedFileOutput()] }), F('multiple segmented file outputs')],
    ['no output', web({}), F('output')],
    ['stream protocol', web({ fileOutputs: [mp4()], streamOutputs: [new StreamOutput({ urls: [] })] }), F('stream protocol')],
    ['stream url', rtmpOnly([], StreamProtocol.RTMP), F('stream url')],
    ['invalid protocol', rtmpOnly(['http://example.com/live/key']), 'invalid url http://example.com/live/key: invalid protocol'],
    ['invalid scheme', rtmpOnly(['rtmp://h/app/key', 'srt://h:9000'], StreamProtocol.RTMP), 'invalid url srt://h:9000: invalid scheme'],
    [
      'rtmp format',
      rtmpOnly(['rtmp://localhost/streamkey']),
      'invalid url rtmp://localhost/streamkey: rtmp urls must be of format rtmp(s)://{host}(/{path})/{app}/{stream_key}( live=1)',
    ],
    ['v1 websocket', rtmpOnly(['wss://example.com/ws']), F('output type')],
    ['audio_only images', web({ audioOnly: true, fileOutputs: [mp4()], imageOutputs: [new ImageOutput()] }), F('audio_only images')],
    ['image filename_suffix', web({ imageOutputs: [new ImageOutput({ filenameSuffix: 7 as ImageFileSuffix })] }), F('filename_suffix')],
    ['image codec', web({ imageOutputs: [new ImageOutput({ imageCodec: 5 as ImageCodec })] }), 'no supported codec is compatible with all outputs'],
    [
      'live playlist dir',
      web({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'a/p', livePlaylistName: 'b/l' })] }),
      F('live_playlist_name must be in same directory as playlist_name'),
    ],
    [
      'live playlist identical',
      web({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'p', livePlaylistName: 'p' })] }),
      F('live_playlist_name cannot be identical to playlist_name'),
    ],
    ['retry: explicit file path', web({ fileOutputs: [mp4('out/x.mp4')] }), 'output configuration does not support retry', { retryCount: 1 }],
    ['retry: explicit segment prefix', web({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 'seg' })] }), 'output configuration does not support retry', { retryCount: 1 }],
  ];
  for (const [name, request, message, extra] of cases) {
    assert.doesNotThrow(() => {
      rejects(request, message, extra);
    }, name);
  }
});

test('retry error is 412 failed_precondition', () => {
  try {
    build(web({ fileOutputs: [mp4('x.mp4')] }), { retryCount: 3 });
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof EgressError);
    assert.equal(e.httpStatus, 412);
  }
});

test('disallow_local_storage without any upload config → output', () => {
  const conf = parseConfig('disallow_local_storage: true\n');
  rejects(web({ fileOutputs: [mp4()] }), F('output'), {}, conf);
  // a per-output upload config satisfies it
  const s3 = new EncodedFileOutput({ output: { case: 's3', value: new S3Upload({ accessKey: 'AK', secret: 'SK', bucket: 'b' }) } });
  assert.equal(build(web({ fileOutputs: [s3] }), {}, conf).file?.storage.target?.kind, 's3');
});

test('v2 structure rules: exact texts', () => {
  const tmpl = (t: PartialMessage<TemplateSource>, outputs: Output[] = [fileOut()]): EgressRequest => ({
    case: 'egress',
    value: new StartEgressRequest({ roomName: 'room', source: { case: 'template', value: new TemplateSource(t) }, outputs }),
  });
  const cases: [string, EgressRequest, string, Partial<StartEgressEnvelope>?][] = [
    ['source', { case: 'egress', value: new StartEgressRequest({ outputs: [fileOut()] }) }, F('source')],
    ['web url', v2({ source: { case: 'web', value: new WebSource({ url: 'rtmp://x/y' }) }, outputs: [fileOut()] }), F('web url')],
    [
      'audio_only and video_only',
      v2({ source: { case: 'web', value: new WebSource({ url: 'http://x', audioOnly: true, videoOnly: true }) }, outputs: [fileOut()] }),
      F('audio_only and video_only'),
    ],
    ['output', v2({ outputs: [] }), F('output')],
    ['output config', v2({ outputs: [new Output()] }), F('output config')],
    ['multiple file outputs', v2({ outputs: [fileOut(), fileOut()] }), F('multiple file outputs')],
    [
      'multiple stream outputs',
      v2({ outputs: [out({ case: 'stream', value: new StreamOutput({ urls: ['srt://a:1'] }) }), out({ case: 'stream', value: new StreamOutput({ urls: ['srt://b:1'] }) })] }),
      F('multiple stream outputs'),
    ],
    [
      'multiple segmented file outputs',
      v2({ outputs: [out({ case: 'segments', value: new SegmentedFileOutput() }), out({ case: 'segments', value: new SegmentedFileOutput() })] }),
      F('multiple segmented file outputs'),
    ],
    [
      'audio_only images',
      v2({ source: { case: 'web', value: new WebSource({ url: 'http://x', audioOnly: true }) }, outputs: [out({ case: 'images', value: new ImageOutput() })] }),
      F('audio_only images'),
    ],
    ['passthrough source', v2({ encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, outputs: [fileOut()] }), F('passthrough source')],
    ['stream only, no urls', v2({ outputs: [out({ case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.RTMP }) })] }), F('output')],
    ['template base url', tmpl({ customBaseUrl: 'file:///etc/passwd' }), F('template base url')],
    ['token or api key/secret', tmpl({ layout: 'grid' }), F('token or api key/secret')],
    ['ws_url', tmpl({ layout: 'grid' }), F('ws_url'), { token: 'TOKEN' }],
  ];
  for (const [name, request, message, extra] of cases) {
    assert.doesNotThrow(() => {
      rejects(request, message, extra);
    }, name);
  }
});

test('codec compatibility', () => {
  // MP3 + video with H264 asked for
  rejects(
    web({ options: advanced({ videoCodec: VideoCodec.H264_MAIN }), fileOutputs: [mp4('', EncodedFileType.MP3)] }),
    'format audio/mpeg incompatible with codec video/h264',
  );
  // MP3 + video, no codec asked for
  rejects(web({ fileOutputs: [mp4('', EncodedFileType.MP3)] }), 'no supported codec is compatible with all outputs');
  // HLS + AC_MP3
  rejects(
    web({ audioOnly: true, options: advanced({ audioCodec: AudioCodec.AC_MP3 }), segmentOutputs: [new SegmentedFileOutput()] }),
    'format application/x-mpegurl incompatible with codec audio/mpeg',
  );
  // OGG + RTMP (RTMP forces AAC)
  rejects(
    web({ audioOnly: true, fileOutputs: [mp4('', EncodedFileType.OGG)], streamOutputs: [new StreamOutput({ urls: ['rtmp://h/app/key'] })] }),
    'format audio/ogg incompatible with codec audio/aac',
  );
  // OGG with video
  rejects(web({ fileOutputs: [mp4('', EncodedFileType.OGG)] }), 'no supported codec is compatible with all outputs');

  // MP4 + HLS → AAC/H264
  const p = build(web({ fileOutputs: [mp4()], segmentOutputs: [new SegmentedFileOutput()] }));
  assert.equal(p.file?.fileType, 'mp4');
  assert.equal(p.encoding.audioCodec, 'aac');
  assert.equal(p.encoding.audioFrequency, 44100);
  // MP4 with Opus asked for
  const o = build(web({ options: advanced({ audioCodec: AudioCodec.OPUS }), fileOutputs: [mp4('', EncodedFileType.MP4)] }));
  assert.equal(o.encoding.audioCodec, 'opus');
  assert.equal(o.encoding.audioFrequency, 48000);
  // RTMP forces AAC even when Opus was asked for
  const r = build(web({ options: advanced({ audioCodec: AudioCodec.OPUS }), streamOutputs: [new StreamOutput({ urls: ['rtmp://h/app/key'] })] }));
  assert.equal(r.encoding.audioCodec, 'aac');
});

test('DEFAULT_FILETYPE resolution', () => {
  const cases: [string, EgressRequest, string, string, number][] = [
    ['audio-only, no codec → OGG/Opus', web({ audioOnly: true, fileOutputs: [mp4()] }), 'ogg', 'opus', 48000],
    ['audio-only AAC → MP4', web({ audioOnly: true, options: advanced({ audioCodec: AudioCodec.AAC }), fileOutputs: [mp4()] }), 'mp4', 'aac', 44100],
    ['audio-only MP3 → MP3', web({ audioOnly: true, options: advanced({ audioCodec: AudioCodec.AC_MP3, audioFrequency: 48000 }), fileOutputs: [mp4()] }), 'mp3', 'mp3', 48000],
    ['audio-only + HLS → MP4', web({ audioOnly: true, fileOutputs: [mp4()], segmentOutputs: [new SegmentedFileOutput()] }), 'mp4', 'aac', 44100],
    ['video-only → MP4', web({ videoOnly: true, fileOutputs: [mp4()] }), 'mp4', 'aac', 44100],
    ['A+V → MP4', web({ fileOutputs: [mp4()] }), 'mp4', 'aac', 44100],
  ];
  for (const [name, req, type, codec, freq] of cases) {
    const p = build(req);
    assert.deepEqual([p.file?.fileType, p.encoding.audioCodec, p.encoding.audioFrequency], [type, codec, freq], name);
  }
  const p = build(web({ audioOnly: true, fileOutputs: [mp4('rec/x.mp4')] }));
  assert.equal(p.file?.storageFilepath, 'rec/x.ogg');
  assert.equal(p.file?.localFilepath, '/tmp/egress-test/EG_test/x.ogg');
  assert.equal(p.tmpDir, '/tmp/egress-test/EG_test');
  assert.equal(p.videoEnabled, false);
});

test('presets table', () => {
  const rows: [EncodingOptionsPreset, number, number, number, number][] = [
    [EncodingOptionsPreset.H264_720P_30, 1280, 720, 30, 3000],
    [EncodingOptionsPreset.H264_720P_60, 1280, 720, 60, 4500],
    [EncodingOptionsPreset.H264_1080P_30, 1920, 1080, 30, 4500],
    [EncodingOptionsPreset.H264_1080P_60, 1920, 1080, 60, 6000],
    [EncodingOptionsPreset.PORTRAIT_H264_720P_30, 720, 1280, 30, 3000],
    [EncodingOptionsPreset.PORTRAIT_H264_720P_60, 720, 1280, 60, 4500],
    [EncodingOptionsPreset.PORTRAIT_H264_1080P_30, 1080, 1920, 30, 4500],
    [EncodingOptionsPreset.PORTRAIT_H264_1080P_60, 1080, 1920, 60, 6000],
  ];
  for (const [preset, w, h, fps, kbps] of rows) {
    const e = build(web({ options: { case: 'preset', value: preset }, fileOutputs: [mp4()] })).encoding;
    assert.deepEqual(
      [e.width, e.height, e.framerate, e.videoBitrateKbps, e.videoProfile, e.depth, e.audioBitrateKbps, e.audioFrequency],
      [w, h, fps, kbps, 'main', 24, 128, 44100],
      EncodingOptionsPreset[preset],
    );
  }
  // no options at all = H264_720P_30
  const e = build(web({ fileOutputs: [mp4()] })).encoding;
  assert.deepEqual([e.width, e.height, e.framerate, e.videoBitrateKbps], [1280, 720, 30, 3000]);
});

test('advanced options', () => {
  const zero = build(web({ options: advanced({}), fileOutputs: [mp4()] })).encoding;
  assert.deepEqual(
    [zero.width, zero.height, zero.depth, zero.framerate, zero.videoBitrateKbps, zero.audioBitrateKbps, zero.audioFrequency, zero.videoProfile, zero.keyFrameIntervalS],
    [1280, 720, 24, 30, 3000, 128, 44100, 'main', 0],
  );
  const full = build(
    web({
      options: advanced({
        width: 1920,
        height: 1080,
        depth: 16,
        framerate: 25,
        videoBitrate: 4500,
        audioBitrate: 96,
        audioFrequency: 48000,
        videoCodec: VideoCodec.H264_HIGH,
        keyFrameInterval: 2,
      }),
      fileOutputs: [mp4()],
    }),
  ).encoding;
  assert.deepEqual(
    [full.width, full.height, full.depth, full.framerate, full.videoBitrateKbps, full.audioBitrateKbps, full.audioFrequency, full.videoProfile, full.keyFrameIntervalS],
    [1920, 1080, 16, 25, 4500, 96, 48000, 'high', 2],
  );
  assert.equal(build(web({ options: advanced({ videoCodec: VideoCodec.H264_BASELINE }), fileOutputs: [mp4()] })).encoding.videoProfile, 'baseline');
  assert.equal(build(web({ options: advanced({ width: 16, height: 16 }), fileOutputs: [mp4()] })).encoding.width, 16);
});

test('keyframe interval: streams default 4 s; segments reset it and take min(kfi, duration)', () => {
  const rtmp = new StreamOutput({ urls: ['rtmp://h/app/key'] });
  assert.equal(build(web({ streamOutputs: [rtmp] })).encoding.keyFrameIntervalS, 4);
  assert.equal(build(web({ fileOutputs: [mp4()] })).encoding.keyFrameIntervalS, 0);
  const both = build(web({ options: advanced({ keyFrameInterval: 2 }), streamOutputs: [rtmp], segmentOutputs: [new SegmentedFileOutput({ segmentDuration: 6 })] }));
  assert.equal(both.encoding.keyFrameIntervalS, 0);
  assert.equal(both.segments?.segmentDurationS, 2);
  assert.equal(build(web({ segmentOutputs: [new SegmentedFileOutput()] })).segments?.segmentDurationS, 4);
});

test('stream URLs: mux expansion, RTMP redaction, SRT verbatim, empty stream next to a file', () => {
  const p = build(
    web({
      streamOutputs: [
        new StreamOutput({ urls: ['rtmp://localhost:1935/live/streamkey', 'mux://abcdefghij', 'rtmps://a.b/c/d/stream live=1'] }),
      ],
    }),
  );
  assert.equal(p.stream?.protocol, 'rtmp');
  assert.deepEqual(
    p.stream?.urls.map((u) => [u.url, u.redactedUrl, u.streamKey]),
    [
      ['rtmp://localhost:1935/live/streamkey', 'rtmp://localhost:1935/live/{str...key}', 'streamkey'],
      ['rtmps://global-live.mux.com:443/app/abcdefghij', 'rtmps://global-live.mux.com:443/app/{abc...hij}', 'abcdefghij'],
      ['rtmps://a.b/c/d/stream live=1', 'rtmps://a.b/c/d/{st...am} live=1', 'stream'],
    ],
  );
  const twitch = validateStreamUrl('twitch://live_12345', 'rtmp', { twitchTemplate: 'rtmps://x.contribute.live-video.net/app/{stream_key}' });
  assert.equal(twitch.url, 'rtmps://x.contribute.live-video.net/app/live_12345');
  assert.equal(twitch.redactedUrl, 'rtmps://x.contribute.live-video.net/app/{liv...345}');
  const srt = build(web({ streamOutputs: [new StreamOutput({ urls: ['srt://localhost:8890?streamid=publish:key'] })] }));
  assert.equal(srt.stream?.protocol, 'srt');
  assert.equal(srt.stream?.urls[0]?.redactedUrl, 'srt://localhost:8890?streamid=publish:key');
  const empty = build(web({ fileOutputs: [mp4()], streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP })] }));
  assert.deepEqual(empty.stream, { protocol: 'rtmp', urls: [] });
});

test('RTMP stream key redaction examples', () => {
  const cases: [string, string][] = [
    ['streamkey', '{str...key}'],
    ['stream', '{st...am}'],
    ['abcdefgh', '{ab...gh}'],
    ['abc', '{a...c}'],
    ['ab', '{...}'],
  ];
  for (const [key, want] of cases) assert.equal(redactIdentifier(key), want, key);
});

test('v2 websocket output: audio-only raw PCM', () => {
  const p = build(v2({ outputs: [out({ case: 'stream', value: new StreamOutput({ urls: ['wss://example.com/audio?token=secret123'] }) })] }));
  assert.equal(p.videoEnabled, false);
  assert.equal(p.audioEnabled, true);
  assert.equal(p.encoding.rawAudio, true);
  assert.equal(p.stream?.protocol, 'websocket');
  rejects(
    v2({ outputs: [fileOut('', EncodedFileType.MP4), out({ case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls: ['ws://x/y'] }) })] }),
    'format video/mp4 incompatible with codec audio/x-raw',
  );
  // video-only: nothing for a raw-audio output to carry (the original's codec negotiation texts)
  const wsOut = out({ case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls: ['ws://x/y'] }) });
  const videoOnly = (encoding?: StartEgressRequest['encoding']): EgressRequest => ({
    case: 'egress',
    value: new StartEgressRequest({ source: { case: 'web', value: new WebSource({ url: 'https://example.com/page', videoOnly: true }) }, outputs: [wsOut], ...(encoding ? { encoding } : {}) }),
  });
  rejects(videoOnly(), 'no supported codec is compatible with all outputs');
  rejects(videoOnly(advanced({ videoCodec: VideoCodec.H264_MAIN })), 'format audio/x-raw incompatible with codec video/h264');
});

test('images: images-only is video-only; sizes default to the encoding; names', () => {
  const p = build(
    web({
      options: { case: 'preset', value: EncodingOptionsPreset.H264_1080P_30 },
      imageOutputs: [new ImageOutput({ filenamePrefix: 'thumbs/{time}', captureInterval: 5 }), new ImageOutput({ width: 320, height: 180 })],
    }),
  );
  assert.equal(p.audioEnabled, false);
  assert.equal(p.images?.length, 2);
  const [a, b] = p.images ?? [];
  assert.deepEqual(
    [a?.captureIntervalS, a?.width, a?.height, a?.storageDir, a?.imagePrefix, a?.filenamePrefix, a?.suffix, a?.localDir],
    [5, 1920, 1080, 'thumbs/', TIME, `thumbs/${TIME}`, 'index', '/tmp/egress-test/EG_test/images_0'],
  );
  assert.deepEqual([b?.captureIntervalS, b?.width, b?.height, b?.imagePrefix], [10, 320, 180, `web-${TIME}`]);
  // with a file, audio stays
  assert.equal(build(web({ fileOutputs: [mp4()], imageOutputs: [new ImageOutput()] })).audioEnabled, true);
});

test('v1 deprecated single output is used when the lists are empty', () => {
  const f = build(web({ output: { case: 'file', value: mp4('dir/x') } }));
  assert.equal(f.file?.storageFilepath, 'dir/x.mp4');
  assert.equal(f.file?.localFilepath, '/tmp/egress-test/EG_test/x.mp4');
  const s = build(web({ output: { case: 'segments', value: new SegmentedFileOutput({ playlistName: 'p.m3u8' }) } }));
  assert.equal(s.segments?.playlistFilename, 'p.m3u8');
  const st = build(web({ output: { case: 'stream', value: new StreamOutput({ urls: ['rtmp://h/app/key'] }) } }));
  assert.equal(st.stream?.urls.length, 1);
  // a list entry wins over the deprecated field
  assert.equal(build(web({ output: { case: 'file', value: mp4('old') }, fileOutputs: [mp4('new')] })).file?.storageFilepath, 'new.mp4');
});

test('segments plan', () => {
  const p = build(web({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 'hls/seg', playlistName: 'hls/index.m3u8', livePlaylistName: 'hls/live.m3u8' })] }));
  assert.deepEqual(
    [p.segments?.storageDir, p.segments?.playlistFilename, p.segments?.livePlaylistFilename, p.segments?.segmentPrefix, p.segments?.playlistName, p.segments?.livePlaylistName, p.segments?.segmentSuffix, p.segments?.localDir],
    ['hls/', 'index.m3u8', 'live.m3u8', 'seg', 'hls/index.m3u8', 'hls/live.m3u8', 'index', '/tmp/egress-test/EG_test'],
  );
  const r = build(web({ segmentOutputs: [new SegmentedFileOutput()] }), { retryCount: 2 });
  assert.equal(r.segments?.playlistFilename, `web-${TIME}-2.m3u8`);
});

test('v2 storage: per-output → per-request → config', () => {
  const s3 = (bucket: string) => new StorageConfig({ provider: { case: 's3', value: new S3Upload({ accessKey: 'AK', secret: 'SK', bucket }) } });
  const p = build(v2({ storage: s3('request'), outputs: [out({ case: 'file', value: new FileOutput() }, s3('output')), out({ case: 'segments', value: new SegmentedFileOutput() })] }));
  const bucket = (t: unknown): string | undefined => (t && typeof t === 'object' && 's3' in t ? (t as { s3: { bucket: string } }).s3.bucket : undefined);
  assert.equal(bucket(p.file?.storage.target), 'output');
  assert.equal(bucket(p.segments?.storage.target), 'request');
  const conf = parseConfig('storage:\n  prefix: pre\n  s3:\n    bucket: conf\n');
  const c = build(v2({ outputs: [fileOut()] }), {}, conf);
  assert.equal(bucket(c.file?.storage.target), 'conf');
  assert.equal(c.file?.storage.prefix, 'pre');
});

test('plan basics: web source, v2 web ignores room, frozen plan', () => {
  const p = build(v2({ roomName: 'ignored', source: { case: 'web', value: new WebSource({ url: 'http://x/', awaitStartSignal: true }) }, outputs: [fileOut()] }), { roomName: 'r', roomId: 'RM' });
  assert.deepEqual(p.source, { kind: 'web', url: 'http://x/', awaitStartSignal: true });
  assert.equal(p.requestType, 'web');
  assert.equal(p.sourceKind, 'web');
  assert.equal(p.roomName, '');
  assert.equal(p.roomId, '');
  assert.equal(p.file?.storageFilepath, `web-${TIME}.mp4`);
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.encoding));
});

test('room composite / template with a layout → template source', () => {
  const conf = parseConfig('api_key: k\napi_secret: s\nws_url: wss://lk.example\n');
  const rc = build({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'testroom', layout: 'speaker', fileOutputs: [mp4()] }) }, { roomId: 'RM_1' }, conf);
  assert.equal(rc.requestType, 'room_composite');
  assert.deepEqual(rc.source, { kind: 'template', baseUrl: 'http://localhost:7980/', layout: 'speaker', roomName: 'testroom', token: '', wsUrl: 'wss://lk.example' });
  assert.equal(rc.file?.storageFilepath, `testroom-${TIME}.mp4`);
});

test('redactRequest: secrets and stream keys, input untouched', () => {
  const req = web({
    fileOutputs: [new EncodedFileOutput({ output: { case: 's3', value: new S3Upload({ accessKey: 'ACCESS_KEY', secret: 'LONG_SECRET', sessionToken: 'TOK', assumeRoleExternalId: 'EXT' }) } })],
    streamOutputs: [new StreamOutput({ urls: ['rtmps://foo.bar.com/app/secret_stream_key', 'srt://foo.bar.com:9999', 'twitch://live_12345678_abcdefghijklmnop'] })],
  });
  const r = redactRequest(req);
  assert.equal(r.case, 'web');
  if (r.case !== 'web' || req.case !== 'web') return;
  const s3 = r.value.fileOutputs[0]?.output;
  assert.equal(s3?.case, 's3');
  if (s3?.case === 's3') {
    assert.deepEqual(
      [s3.value.accessKey, s3.value.secret, s3.value.sessionToken, s3.value.assumeRoleExternalId],
      ['{access_key}', '{secret}', '{session_token}', '{external_id}'],
    );
  }
  assert.deepEqual(r.value.streamOutputs[0]?.urls, ['rtmps://foo.bar.com/app/{sec...key}', 'srt://foo.bar.com:9999', 'twitch://{liv...nop}']);
  assert.equal(req.value.streamOutputs[0]?.urls[0], 'rtmps://foo.bar.com/app/secret_stream_key');
  const t = redactRequest({ case: 'track', value: new TrackEgressRequest({ output: { case: 'websocketUrl', value: 'wss://foo.bar.com/audio?callId=12145&token=7df13dab0d4437602d6f7056b97e72b9' } }) });
  assert.equal(t.case === 'track' && t.value.output.value, 'wss://foo.bar.com/audio?callId={1...5}&token={7df...2b9}');
});

test('requestTypeOf and cpu cost', () => {
  const conf = parseConfig('cpu_cost:\n  web_cpu_cost: 3\n');
  assert.equal(requestTypeOf(web({})), 'web');
  assert.equal(requestTypeOf(v2({})), 'web');
  assert.equal(requestTypeOf({ case: 'egress', value: new StartEgressRequest({ source: { case: 'template', value: new TemplateSource() } }) }), 'template');
  assert.equal(requestTypeOf({ case: 'roomComposite', value: new RoomCompositeEgressRequest() }), 'room_composite');
  assert.deepEqual(costOf(web({}), conf), { cpu: 3, memoryGb: 0 });
  assert.deepEqual(costOf(web({ audioOnly: true }), conf), { cpu: DEFAULT_AUDIO_WEB_CPU_COST, memoryGb: 0 });
  assert.deepEqual(costOf(web({}), conf, 2.5), { cpu: 2.5, memoryGb: 0 });
  assert.equal(costOf({ case: 'roomComposite', value: new RoomCompositeEgressRequest() }, config).cpu, 1.6);
  // audio-only with a layout: the template page; without one: the page-less SDK path
  assert.equal(costOf({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ audioOnly: true, layout: 'grid' }) }, config).cpu, 0.8);
  assert.equal(costOf({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ audioOnly: true }) }, config).cpu, 0.2);
  assert.equal(costOf({ case: 'track', value: new TrackEgressRequest() }, config).cpu, 0.2);
});

test('v2 PASSTHROUGH (validatePassthrough): every rule has its text; a valid one is a track egress of that id to OGG until the kind is known', () => {
  const pt = { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH } as const;
  const media = (m: PartialMessage<MediaSource>, outputs: Output[] = [fileOut()]): EgressRequest => ({
    case: 'egress',
    value: new StartEgressRequest({ roomName: 'room', encoding: pt, source: { case: 'media', value: new MediaSource(m) }, outputs }),
  });
  const route = (match: AudioRoute['match']): AudioRoute => new AudioRoute({ match, channel: AudioChannel.BOTH });
  const extra = { token: 'TOKEN', wsUrl: 'ws://lk' };
  rejects(media({ video: { case: 'videoTrackId', value: '' } }), F('passthrough video_track_id'), extra);
  rejects(media({ video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p' }) } }), F('passthrough participant_video'), extra);
  rejects(media({ audio: new AudioConfig({ captureAll: true }) }), F('passthrough capture_all'), extra);
  rejects(media({ audio: new AudioConfig({ routes: [route({ case: 'trackId', value: 'TR_a' }), route({ case: 'trackId', value: 'TR_b' })] }) }), F('passthrough audio routes'), extra);
  rejects(media({ audio: new AudioConfig({ routes: [route({ case: 'participantIdentity', value: 'p' })] }) }), F('passthrough audio route match'), extra);
  rejects(media({ audio: new AudioConfig({ routes: [route({ case: 'trackId', value: '' })] }) }), F('passthrough audio route track_id'), extra);
  rejects(media({}), F('passthrough track_id'), extra);
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' }, audio: new AudioConfig({ routes: [route({ case: 'trackId', value: 'TR_a' })] }) }), F('passthrough track_id'), extra);
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut(), fileOut()]), F('passthrough outputs'), extra);
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [out({ case: 'stream', value: new StreamOutput({ urls: ['rtmp://a/b'] }) })]), F('passthrough output'), extra);
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut('', EncodedFileType.MP4)]), F('passthrough file_type'), extra);
  const plan = build(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut('pt/{track_id}')]), extra);
  assert.equal(plan.requestType, 'track');
  assert.deepEqual({ kind: plan.source.kind, trackId: plan.source.kind === 'track' ? plan.source.trackId : '' }, { kind: 'track', trackId: 'TR_v' });
  assert.equal(plan.file?.storageFilepath, 'pt/TR_v.ogg');
  const audio = build(media({ audio: new AudioConfig({ routes: [route({ case: 'trackId', value: 'TR_a' })] }) }), extra);
  assert.equal(audio.source.kind === 'track' ? audio.source.trackId : '', 'TR_a');
});
