/**
 * The admission cost model: a request reserves its type's 720p30 cost scaled by the pixel rate it
 * encodes; audio-only and passthrough apart; a user-set `*_cpu_cost` is the 720p30 figure (what the
 * original reserves at its default preset); invalid values fall back to the defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EncodingOptions,
  EncodingOptionsPreset,
  MediaSource,
  ParticipantEgressRequest,
  RoomCompositeEgressRequest,
  StartEgressRequest,
  TemplateSource,
  TrackCompositeEgressRequest,
  TrackEgressRequest,
  WebEgressRequest,
  WebSource,
} from '@livekit/protocol';
import { DEFAULT_PARTICIPANT_CPU_COST, DEFAULT_TRACK_CPU_COST, DEFAULT_WEB_CPU_COST, parseConfig } from '../../main/config/index.js';
import { AUDIO_ONLY_SDK_SHARE, CHROME_FIXED_SHARE, MAX_PIXEL_RATE_RATIO, costOf, type EgressRequest, type OptionsOneof } from '../../main/request/index.js';

const P = EncodingOptionsPreset;
const defaults = parseConfig('');
const preset = (value: EncodingOptionsPreset): OptionsOneof => ({ case: 'preset', value });
const advanced = (o: Partial<Pick<EncodingOptions, 'width' | 'height' | 'framerate'>>): OptionsOneof => ({ case: 'advanced', value: new EncodingOptions(o) });
const web = (options: OptionsOneof, audioOnly = false): EgressRequest => ({ case: 'web', value: new WebEgressRequest({ url: 'https://example.com', options, audioOnly }) });
const cpu = (r: EgressRequest, config = defaults): number => costOf(r, config).cpu;
const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} ≠ ${b}`);

test('a web egress reserves more at 1080p60 than at 720p30, in order of pixel rate, and less audio-only', () => {
  const at = (p: EncodingOptionsPreset): number => cpu(web(preset(p)));
  close(at(P.H264_720P_30), DEFAULT_WEB_CPU_COST, 'the default preset reserves web_cpu_cost');
  close(cpu(web({ case: undefined })), DEFAULT_WEB_CPU_COST, 'no options = the default preset');
  const order = [advanced({ width: 854, height: 480 }), preset(P.H264_720P_30), preset(P.H264_720P_60), preset(P.H264_1080P_30), preset(P.H264_1080P_60)].map((o) => cpu(web(o)));
  for (let i = 1; i < order.length; i++) assert.ok((order[i] as number) > (order[i - 1] as number), `${order.join(' < ')}`);
  // 1080p60 is 4.5 × the pixels per second of 720p30: the pixel-proportional share grows 4.5 times.
  close(at(P.H264_1080P_60), DEFAULT_WEB_CPU_COST * (CHROME_FIXED_SHARE + (1 - CHROME_FIXED_SHARE) * 4.5), '1080p60');
  // Portrait presets have the same pixels as their landscape twins.
  close(at(P.PORTRAIT_H264_1080P_60), at(P.H264_1080P_60), 'portrait 1080p60');
  assert.ok(cpu(web(preset(P.H264_1080P_60), true)) < at(P.H264_720P_30), 'audio-only');
  close(cpu(web(preset(P.H264_1080P_60), true)), defaults.cpu_cost.audio_web_cpu_cost, 'audio-only ignores the video preset');
});

test('every encoding type scales: room composite, template, participant, track composite, v2 media; audio-only and passthrough apart', () => {
  const rc = (options: OptionsOneof, audioOnly = false): EgressRequest => ({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'r', options, audioOnly }) });
  assert.ok(cpu(rc(preset(P.H264_1080P_60))) > cpu(rc(preset(P.H264_720P_30))));
  close(cpu(rc(preset(P.H264_720P_30))), defaults.cpu_cost.room_composite_cpu_cost, 'room composite 720p30');
  close(cpu(rc(preset(P.H264_1080P_60), true)), defaults.cpu_cost.sdk_audio_room_composite_cpu_cost, 'audio-only room composite (SDK path)');
  const tpl = (encoding: OptionsOneof): EgressRequest => ({ case: 'egress', value: new StartEgressRequest({ roomName: 'r', encoding, source: { case: 'template', value: new TemplateSource({ layout: 'grid' }) } }) });
  close(cpu(tpl(preset(P.H264_1080P_60))), cpu(rc(preset(P.H264_1080P_60))), 'a v2 template costs as a room composite');
  const v2web = (encoding: OptionsOneof): EgressRequest => ({ case: 'egress', value: new StartEgressRequest({ encoding, source: { case: 'web', value: new WebSource({ url: 'https://example.com' }) } }) });
  close(cpu(v2web(preset(P.H264_720P_60))), cpu(web(preset(P.H264_720P_60))), 'a v2 web source costs as a web egress');
  const part = (options: OptionsOneof): EgressRequest => ({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', identity: 'p', options }) });
  close(cpu(part(preset(P.H264_720P_30))), DEFAULT_PARTICIPANT_CPU_COST, 'participant 720p30');
  assert.ok(cpu(part(preset(P.H264_1080P_60))) > DEFAULT_PARTICIPANT_CPU_COST);
  const tc = (videoTrackId: string, options: OptionsOneof): EgressRequest => ({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'r', audioTrackId: 'TR_a', videoTrackId, options }) });
  close(cpu(tc('TR_v', preset(P.H264_720P_30))), defaults.cpu_cost.track_composite_cpu_cost, 'track composite 720p30');
  assert.ok(cpu(tc('TR_v', preset(P.H264_1080P_30))) > defaults.cpu_cost.track_composite_cpu_cost);
  close(cpu(tc('', preset(P.H264_1080P_30))), defaults.cpu_cost.track_composite_cpu_cost * AUDIO_ONLY_SDK_SHARE, 'audio-only track composite');
  const media = (encoding: OptionsOneof, video: boolean): EgressRequest => ({
    case: 'egress',
    value: new StartEgressRequest({ roomName: 'r', encoding, source: { case: 'media', value: new MediaSource(video ? { video: { case: 'videoTrackId', value: 'TR_v' } } : {}) } }),
  });
  assert.ok(cpu(media(preset(P.H264_1080P_60), true)) > DEFAULT_PARTICIPANT_CPU_COST);
  close(cpu(media(preset(P.H264_1080P_60), false)), DEFAULT_PARTICIPANT_CPU_COST * AUDIO_ONLY_SDK_SHARE, 'audio-only media');
  close(cpu(media(preset(P.PASSTHROUGH), true)), DEFAULT_TRACK_CPU_COST, 'passthrough: no encode');
  close(cpu({ case: 'track', value: new TrackEgressRequest() }), DEFAULT_TRACK_CPU_COST, 'track egress');
});

test("a user-set *_cpu_cost is what the original reserves at its default preset (H264_720P_30), and scales from there", () => {
  const conf = parseConfig('cpu_cost:\n  web_cpu_cost: 3\n  room_composite_cpu_cost: 3.5\n  participant_cpu_cost: 1.25\n  track_composite_cpu_cost: 0.75\n  track_cpu_cost: 1\n  audio_web_cpu_cost: 0.7\n');
  close(cpu(web(preset(P.H264_720P_30)), conf), 3, 'web at the default preset');
  close(cpu(web({ case: undefined }), conf), 3, 'web without options');
  close(cpu({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'r' }) }, conf), 3.5, 'room composite');
  close(cpu({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', identity: 'p' }) }, conf), 1.25, 'participant');
  close(cpu({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'r', audioTrackId: 'a', videoTrackId: 'v' }) }, conf), 0.75, 'track composite');
  close(cpu({ case: 'track', value: new TrackEgressRequest() }, conf), 1, 'track');
  close(cpu(web(preset(P.H264_1080P_60), true), conf), 0.7, 'audio web');
  // The same scale as the default: 1080p60 reserves the user's figure × the model's 1080p60 factor.
  close(cpu(web(preset(P.H264_1080P_60)), conf) / 3, cpu(web(preset(P.H264_1080P_60))) / DEFAULT_WEB_CPU_COST, '1080p60 factor');
  // estimated_cpu from the request still wins, as in the original.
  close(costOf(web(preset(P.H264_1080P_60)), conf, 0.9).cpu, 0.9, 'estimated_cpu');
});

test('custom (advanced) encodings scale by width × height × framerate; zero fields keep 1280×720 at 30 fps; absurd ones are capped', () => {
  const at = (o: Partial<Pick<EncodingOptions, 'width' | 'height' | 'framerate'>>): number => cpu(web(advanced(o)));
  close(at({}), DEFAULT_WEB_CPU_COST, 'all zero = 720p30');
  close(at({ width: 1920, height: 1080, framerate: 60 }), cpu(web(preset(P.H264_1080P_60))), 'advanced 1080p60 = the preset');
  close(at({ framerate: 30 }), DEFAULT_WEB_CPU_COST, 'only framerate 30');
  assert.ok(at({ width: 640, height: 360, framerate: 15 }) < DEFAULT_WEB_CPU_COST, 'smaller and slower costs less');
  // The fixed share stays, however small the picture: never zero, never negative.
  assert.ok(at({ width: 16, height: 16, framerate: 1 }) >= DEFAULT_WEB_CPU_COST * CHROME_FIXED_SHARE);
  assert.ok(at({ width: 1280, height: 720, framerate: 15 }) < DEFAULT_WEB_CPU_COST && at({ width: 1280, height: 720, framerate: 45 }) > DEFAULT_WEB_CPU_COST);
  const capped = DEFAULT_WEB_CPU_COST * (CHROME_FIXED_SHARE + (1 - CHROME_FIXED_SHARE) * MAX_PIXEL_RATE_RATIO);
  close(at({ width: 3840, height: 2160, framerate: 60 }), capped, '4K60 is the cap');
  const huge = at({ width: 4294967294, height: 4294967294, framerate: 4294967295 });
  assert.ok(Number.isFinite(huge));
  close(huge, capped, 'uint32 extremes are reserved as 4K60');
});

test('invalid *_cpu_cost values fall back to the defaults (zero as in the original; negative or infinite too)', () => {
  for (const v of ['0', '-2', '.inf', '-.inf']) {
    const conf = parseConfig(`cpu_cost:\n  web_cpu_cost: ${v}\n  participant_cpu_cost: ${v}\n  track_cpu_cost: ${v}\n`);
    assert.equal(conf.cpu_cost.web_cpu_cost, DEFAULT_WEB_CPU_COST, v);
    assert.equal(conf.cpu_cost.participant_cpu_cost, DEFAULT_PARTICIPANT_CPU_COST, v);
    assert.equal(conf.cpu_cost.track_cpu_cost, DEFAULT_TRACK_CPU_COST, v);
    close(cpu(web(preset(P.H264_720P_30)), conf), DEFAULT_WEB_CPU_COST, `web 720p30 with ${v}`);
  }
  assert.throws(() => parseConfig('cpu_cost:\n  web_cpu_cost: .nan\n'), /cpu_cost\.web_cpu_cost/);
  assert.throws(() => parseConfig('cpu_cost:\n  web_cpu_cost: lots\n'), /cpu_cost\.web_cpu_cost/);
});
