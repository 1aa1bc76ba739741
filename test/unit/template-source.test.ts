import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EncodedFileOutput, ImageOutput, Output, RoomCompositeEgressRequest, SegmentedFileOutput, StartEgressRequest, StreamOutput, StreamProtocol, TemplateSource, WebEgressRequest, WebSource } from '@livekit/protocol';
import { TokenVerifier } from 'livekit-server-sdk';
import { parseConfig } from '../../main/config/index.js';
import { EgressError } from '../../main/contracts/errors.js';
import { assertRunnable } from '../../main/egress/capabilities.js';
import { httpUrlOf } from '../../main/egress/room-end.js';
import { RECORDER_TOKEN_TTL_S, redactPageUrl, resolveTemplateUrl, templatePageUrl } from '../../main/egress/template-source.js';
import { buildPipelinePlan, type EgressRequest } from '../../main/request/index.js';

const creds = { apiKey: 'APIkey123', apiSecret: 'a-secret-that-is-long-enough-for-hs256' };

test('template page URL: layout, url and token set, the base URL query kept, old values overwritten', () => {
  const u = new URL(templatePageUrl('https://tpl.example/room/?theme=x&layout=old', 'speaker', 'wss://lk.example', 'T0K'));
  assert.equal(u.origin + u.pathname, 'https://tpl.example/room/');
  assert.equal(u.searchParams.get('theme'), 'x');
  assert.equal(u.searchParams.get('layout'), 'speaker');
  assert.equal(u.searchParams.get('url'), 'wss://lk.example');
  assert.equal(u.searchParams.get('token'), 'T0K');
  assert.equal(u.searchParams.getAll('layout').length, 1);
});

test('recorder token: identity = egress id, hidden recorder, subscribe-only, 24 h', async () => {
  const source = { kind: 'template' as const, baseUrl: 'http://localhost:7980/', layout: '', roomName: 'r1', token: '', wsUrl: 'ws://127.0.0.1:7880' };
  const t0 = Math.floor(Date.now() / 1000);
  const url = new URL(await resolveTemplateUrl(source, 'EG_abc', creds));
  const claims = await new TokenVerifier(creds.apiKey, creds.apiSecret).verify(url.searchParams.get('token') ?? '');
  assert.equal(claims.sub, 'EG_abc');
  assert.equal(claims.kind, 'egress');
  assert.deepEqual(
    { ...claims.video },
    { roomJoin: true, room: 'r1', canSubscribe: true, canPublish: false, canPublishData: false, hidden: true, recorder: true },
  );
  assert.ok(Math.abs((claims.exp ?? 0) - t0 - RECORDER_TOKEN_TTL_S) <= 5, `exp ${claims.exp}`);
  assert.equal(url.searchParams.get('layout'), '');
  assert.equal(url.searchParams.get('url'), 'ws://127.0.0.1:7880');
});

test('a token from the request is used as given; no token and no key/secret → the original text', async () => {
  const source = { kind: 'template' as const, baseUrl: 'http://localhost:7980/', layout: 'grid', roomName: 'r1', token: 'given', wsUrl: 'ws://x' };
  assert.equal(new URL(await resolveTemplateUrl(source, 'EG_1', { apiKey: '', apiSecret: '' })).searchParams.get('token'), 'given');
  await assert.rejects(resolveTemplateUrl({ ...source, token: '' }, 'EG_1', { apiKey: '', apiSecret: '' }), /request has missing or invalid field: token or api key\/secret/);
});

test('page URLs are logged without their token', () => {
  const logged = redactPageUrl(templatePageUrl('http://localhost:7980/', 'grid', 'ws://x', 'SECRET.JWT'));
  assert.ok(!logged.includes('SECRET'));
  assert.match(logged, /token=%7Btoken%7D/);
});

test('livekit-server API URL from its ws URL', () => {
  assert.equal(httpUrlOf('ws://127.0.0.1:7880'), 'http://127.0.0.1:7880');
  assert.equal(httpUrlOf('wss://lk.example.com'), 'https://lk.example.com');
});

test('outputs this build cannot run are refused up front (never accepted and half recorded)', () => {
  const config = parseConfig('tmp_dir: /tmp/egress-test\napi_key: k\napi_secret: s\nws_url: ws://x\n');
  const plan = (request: EgressRequest) => buildPipelinePlan({ egressId: 'EG_x', request, roomName: 'r' }, config, new Date());
  const webReq = (f: Partial<WebEgressRequest>): EgressRequest => ({ case: 'web', value: new WebEgressRequest({ url: 'https://example.com/', fileOutputs: [new EncodedFileOutput({ filepath: 'a.mp4' })], ...f }) });
  const refused = (request: EgressRequest, text: RegExp): void => {
    assert.throws(
      () => assertRunnable(plan(request)),
      (e: unknown) => e instanceof EgressError && e.psrpcCode === 'invalid_argument' && e.httpStatus === 400 && text.test(e.message),
    );
  };
  // WebSocket (v2 only): pages (web, room template), the room mix and track egress send raw PCM; images next to
  // it are refused (validation made the request audio-only), and so are sources not built for it.
  const wsOut = (urls: string[]): Output => new Output({ config: { case: 'stream', value: new StreamOutput({ protocol: StreamProtocol.WEBSOCKET, urls }) } });
  const v2ws = (source: StartEgressRequest['source'], extra: Output[] = []): EgressRequest => ({
    case: 'egress',
    value: new StartEgressRequest({ roomName: 'r', source, outputs: [...extra, wsOut(['ws://127.0.0.1:9000/pcm'])] }),
  });
  assertRunnable(plan(v2ws({ case: 'web', value: new WebSource({ url: 'https://example.com/' }) })));
  assertRunnable(plan(v2ws({ case: 'template', value: new TemplateSource({ layout: 'grid' }) })));
  // an audio-only template without a layout records the room's mix without a page (room audio)
  const mix = plan(v2ws({ case: 'template', value: new TemplateSource({ audioOnly: true }) }));
  assert.equal(mix.source.kind, 'room_audio');
  assertRunnable(mix);
  refused(
    v2ws({ case: 'web', value: new WebSource({ url: 'https://example.com/' }) }, [new Output({ config: { case: 'images', value: new ImageOutput({ captureInterval: 5 }) } })]),
    /^image output next to a websocket stream output is not yet supported by this egress$/,
  );
  assertRunnable(plan(webReq({ streamOutputs: [new StreamOutput({ protocol: StreamProtocol.SRT, urls: ['srt://127.0.0.1:9000'] })] })));
  // what it can run passes
  assertRunnable(plan(webReq({})));
  assertRunnable(plan(webReq({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 'seg' })] })));
  assertRunnable(plan(webReq({ fileOutputs: [], segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 'seg' })] })));
  assertRunnable(plan(webReq({ imageOutputs: [new ImageOutput({ captureInterval: 5 })] })));
  assertRunnable(plan(webReq({ streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: ['rtmp://127.0.0.1/live/key'] })] })));
  assertRunnable(plan(webReq({ fileOutputs: [], imageOutputs: [new ImageOutput({})] })));
  assertRunnable(plan({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'r', layout: 'grid', fileOutputs: [new EncodedFileOutput({ filepath: 'a.mp4' })] }) }));
});
