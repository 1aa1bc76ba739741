/**
 * v2 media source requests: the original's validation texts, the
 * plan a valid one becomes (video by track id or participant, audio routes with their channels,
 * capture_all ignoring the routes), what the run waits for, and the outputs still refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AudioChannel,
  AudioConfig,
  AudioRoute,
  EncodedFileType,
  EncodingOptionsPreset,
  FileOutput,
  ImageOutput,
  MediaSource,
  Output,
  ParticipantInfo_Kind,
  ParticipantVideo,
  SegmentedFileOutput,
  StartEgressRequest,
  StreamOutput,
  StreamProtocol,
} from '@livekit/protocol';
import type { PartialMessage } from '@bufbuild/protobuf';
import { assertRunnable } from '../../main/egress/capabilities.js';
import { EgressError } from '../../main/contracts/errors.js';
import { parseConfig } from '../../main/config/index.js';
import { buildPipelinePlan, costOf, requestTypeOf, type EgressRequest } from '../../main/request/index.js';
import { requiredOf } from '../../main/sdk/media-selection.js';
import type { MediaSourcePlan } from '../../main/contracts/pipeline.js';

const NOW = new Date(2022, 9, 4, 1, 13, 6, 789);
const config = parseConfig('tmp_dir: /tmp/egress-test\napi_key: k\napi_secret: s\nws_url: ws://127.0.0.1:7880\n');
const F = (field: string): string => `request has missing or invalid field: ${field}`;
const fileOut = (filepath = '', fileType = EncodedFileType.DEFAULT_FILETYPE): Output => new Output({ config: { case: 'file', value: new FileOutput({ filepath, fileType }) } });
const route = (match: AudioRoute['match'], channel = AudioChannel.BOTH): AudioRoute => new AudioRoute({ match, channel });
const media = (m: PartialMessage<MediaSource>, outputs: Output[] = [fileOut()], encoding?: StartEgressRequest['encoding']): EgressRequest => ({
  case: 'egress',
  value: new StartEgressRequest({ roomName: 'room', source: { case: 'media', value: new MediaSource(m) }, outputs, ...(encoding ? { encoding } : {}) }),
});
const plan = (request: EgressRequest) => buildPipelinePlan({ egressId: 'EG_unit', request, roomName: 'room' }, config, NOW);
const sourceOf = (request: EgressRequest): MediaSourcePlan => {
  const s = plan(request).source;
  assert.equal(s.kind, 'media');
  return s as MediaSourcePlan;
};
const rejects = (request: EgressRequest, message: string | RegExp): void =>
  assert.throws(() => assertRunnable(plan(request)), (e: unknown) => e instanceof EgressError && (typeof message === 'string' ? e.message === message : message.test(e.message)), String(message));

test('media source: neither video nor audio → `audio or video`; an AudioConfig without capture_all or routes is no audio', () => {
  rejects(media({}), F('audio or video'));
  rejects(media({ audio: new AudioConfig() }), F('audio or video'));
  rejects(media({ audio: new AudioConfig({ routes: [] }) }), F('audio or video'));
  // outputs are checked after the source (updateOutputs)
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, []), F('output'));
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut(), fileOut()]), F('multiple file outputs'));
  rejects(media({ audio: new AudioConfig({ captureAll: true }) }, [new Output({ config: { case: 'images', value: new ImageOutput({ captureInterval: 5 }) } })]), F('audio_only images'));
  rejects(media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [new Output()]), F('output config'));
});

test('media source: video by track id, or a participant camera / screen share; routes keep their match and channel; capture_all ignores the routes', () => {
  const v = plan(media({ video: { case: 'videoTrackId', value: 'TR_v' } }));
  assert.equal(v.requestType, 'media');
  assert.equal(v.sourceKind, 'sdk');
  assert.equal(v.videoEnabled, true);
  assert.equal(v.audioEnabled, false);
  assert.equal(v.file?.fileType, 'mp4');
  // named after the room, like every transcoded room-based request
  assert.equal(v.file?.storageFilepath, 'room-2022-10-04T011306.mp4');
  assert.deepEqual(v.source, { kind: 'media', video: { trackId: 'TR_v' }, audio: null, roomName: 'room', token: '', wsUrl: 'ws://127.0.0.1:7880' });

  const full = sourceOf(
    media({
      video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p3', preferScreenShare: true }) },
      audio: new AudioConfig({
        routes: [
          route({ case: 'trackId', value: 'TR_a' }, AudioChannel.LEFT),
          route({ case: 'participantIdentity', value: 'p2' }, AudioChannel.RIGHT),
          route({ case: 'participantKind', value: ParticipantInfo_Kind.AGENT }, AudioChannel.BOTH),
          route({ case: 'participantKind', value: ParticipantInfo_Kind.CONNECTOR }, AudioChannel.LEFT),
          route({ case: undefined }),
        ],
      }),
    }),
  );
  assert.deepEqual(full.video, { identity: 'p3', screenShare: true });
  assert.deepEqual(full.audio, {
    captureAll: false,
    routes: [
      { match: { trackId: 'TR_a' }, channel: 'left' },
      { match: { identity: 'p2' }, channel: 'right' },
      { match: { participantKind: 'agent' }, channel: 'both' },
      { match: { participantKind: 'connector' }, channel: 'left' },
      { match: { none: true }, channel: 'both' },
    ],
  });
  assert.deepEqual(requiredOf(full), { identities: ['p3', 'p2'], trackIds: ['TR_a'] });

  const all = sourceOf(media({ video: { case: 'videoTrackId', value: 'TR_v' }, audio: new AudioConfig({ captureAll: true, routes: [route({ case: 'participantIdentity', value: 'p9' }, AudioChannel.LEFT)] }) }));
  assert.deepEqual(all.audio, { captureAll: true, routes: [] });
  // with capture_all the routes name nobody the run has to wait for
  assert.deepEqual(requiredOf(all), { identities: [], trackIds: ['TR_v'] });

  const audioOnly = plan(media({ audio: new AudioConfig({ routes: [route({ case: 'participantKind', value: ParticipantInfo_Kind.STANDARD }, AudioChannel.LEFT)] }) }));
  assert.equal(audioOnly.videoEnabled, false);
  assert.equal(audioOnly.audioEnabled, true);
  assert.equal(audioOnly.file?.fileType, 'ogg');
  assert.equal(audioOnly.encoding.audioCodec, 'opus');
  assertRunnable(audioOnly);
});

test('media source: request type and cost are the participant\'s; PASSTHROUGH stays the track egress; outputs other SDK sources refuse are refused', () => {
  const req = media({ video: { case: 'videoTrackId', value: 'TR_v' } });
  assert.equal(requestTypeOf(req), 'media');
  assert.equal(costOf(req, config).cpu, config.cpu_cost.participant_cpu_cost);
  const pt = media({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut()], { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH });
  assert.equal(plan(pt).requestType, 'track');
  assert.equal(costOf(pt, config).cpu, config.cpu_cost.track_cpu_cost);
  rejects(media({ video: { case: 'videoTrackId', value: '' } }, [fileOut()], { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }), F('passthrough video_track_id'));
  const video = { video: { case: 'videoTrackId', value: 'TR_v' } } as const;
  rejects(media(video, [new Output({ config: { case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: ['rtmp://127.0.0.1/live/k'] }) } })]), /^RTMP stream output of media egress is not yet supported/);
  rejects(media(video, [new Output({ config: { case: 'segments', value: new SegmentedFileOutput({ filenamePrefix: 'x' }) } })]), /^segmented \(HLS\) output of media egress is not yet supported/);
  rejects(media(video, [fileOut(), new Output({ config: { case: 'images', value: new ImageOutput({ captureInterval: 5 }) } })]), /^image output of media egress is not yet supported/);
  rejects(media({ audio: new AudioConfig({ captureAll: true }) }, [new Output({ config: { case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls: ['ws://127.0.0.1:9/pcm'] }) } })]), /^websocket stream output of media egress is not yet supported/);
});
