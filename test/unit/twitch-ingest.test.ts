/**
 * `twitch://` and `mux://` shorthands: the Twitch ingest comes from the config or a
 * cached copy of Twitch's ingest list, never from the network while a request is validated; the
 * cache is refreshed only when stale, and a failed refresh keeps the old copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StreamOutput, StreamProtocol, WebEgressRequest, EncodedFileOutput } from '@livekit/protocol';
import { parseConfig } from '../../main/config/index.js';
import { buildPipelinePlan } from '../../main/request/plan.js';
import { refreshTwitchIngests, templateFromIngests, twitchTemplateOf } from '../../main/request/twitch-ingest.js';
import { DEFAULT_TWITCH_TEMPLATE, TWITCH_INGESTS_URL } from '../../main/request/urls.js';

const INGESTS = {
  _id: 1,
  ingests: [
    { _id: 24, name: 'Europe: Germany, Frankfurt', url_template: 'rtmp://fra05.contribute.live-video.net/app/{stream_key}', url_template_secure: 'rtmps://fra05.contribute.live-video.net/app/{stream_key}' },
    { _id: 25, name: 'US West', url_template: 'rtmp://sea.contribute.live-video.net/app/{stream_key}' },
  ],
};

const noNetwork: typeof fetch = () => {
  throw new Error('network used');
};

function plan(configYaml: string, urls: string[]): ReturnType<typeof buildPipelinePlan> {
  const request = new WebEgressRequest({ url: 'https://example.com', fileOutputs: [new EncodedFileOutput({ filepath: 'x.mp4' })], streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls })] });
  return buildPipelinePlan({ egressId: 'EG_twitch', request: { case: 'web', value: request } }, parseConfig(`tmp_dir: /tmp/egress-test\n${configYaml}`), new Date());
}

test('the ingest template: the first ingest\'s url_template_secure, else url_template; nothing usable → null', () => {
  assert.equal(templateFromIngests(INGESTS), 'rtmps://fra05.contribute.live-video.net/app/{stream_key}');
  assert.equal(templateFromIngests({ ingests: [{ url_template: 'rtmp://sea.contribute.live-video.net/app/{stream_key}' }] }), 'rtmp://sea.contribute.live-video.net/app/{stream_key}');
  assert.equal(templateFromIngests({ ingests: [] }), null);
  assert.equal(templateFromIngests({ nope: 1 }), null);
  assert.equal(templateFromIngests({ ingests: [{ url_template: 'rtmp://no-key/app/' }] }), null);
});

test('twitch:// without config → Twitch\'s auto-routing ingest; mux:// → Mux RTMPS; keys redacted', () => {
  const p = plan('', ['twitch://live_1234567_abcdef', 'mux://muxstreamkey']);
  assert.deepEqual(
    p.stream?.urls.map((u) => [u.requestedUrl, u.url, u.redactedUrl]),
    [
      ['twitch://live_1234567_abcdef', DEFAULT_TWITCH_TEMPLATE.replace('{stream_key}', 'live_1234567_abcdef'), 'rtmps://live.twitch.tv:443/app/{liv...def}'],
      ['mux://muxstreamkey', 'rtmps://global-live.mux.com:443/app/muxstreamkey', 'rtmps://global-live.mux.com:443/app/{mux...key}'],
    ],
  );
});

test('twitch_ingest_template from the config wins; contribute.live-video.net URLs are routed through it too', () => {
  const p = plan('twitch_ingest_template: rtmp://cfg.contribute.live-video.net/app/{stream_key}\n', ['twitch://k_123456789', 'rtmps://other.contribute.live-video.net/app/k_987654321']);
  assert.deepEqual(
    p.stream?.urls.map((u) => u.url),
    ['rtmp://cfg.contribute.live-video.net/app/k_123456789', 'rtmp://cfg.contribute.live-video.net/app/k_987654321'],
  );
  assert.equal(p.stream?.twitchTemplate, 'rtmp://cfg.contribute.live-video.net/app/{stream_key}');
});

test('the cached ingest list is used without a network call; a stale cache is refreshed, a fresh one is not, a failed refresh keeps it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'twitch-'));
  try {
    const file = path.join(dir, 'sub', 'twitch-ingests.json');
    // no cache yet: the default ingest
    assert.equal(twitchTemplateOf({ twitch_ingest_template: '', twitch_ingests_file: file }), undefined);
    let calls = 0;
    const fake: typeof fetch = async (input) => {
      calls++;
      assert.equal(String(input), TWITCH_INGESTS_URL);
      return new Response(JSON.stringify(INGESTS), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    assert.equal(await refreshTwitchIngests(file, fake), true);
    assert.equal(calls, 1);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), INGESTS);
    // fresh: not fetched again
    assert.equal(await refreshTwitchIngests(file, noNetwork), false);
    const p = plan(`twitch_ingests_file: ${file}\n`, ['twitch://live_42_secretkey']);
    assert.equal(p.stream?.urls[0]?.url, 'rtmps://fra05.contribute.live-video.net/app/live_42_secretkey');
    assert.equal(p.stream?.urls[0]?.redactedUrl, 'rtmps://fra05.contribute.live-video.net/app/{liv...key}');
    // stale and Twitch unreachable: the old copy stays and is still used
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    await utimes(file, old, old);
    const failing: typeof fetch = async () => new Response('busy', { status: 503 });
    assert.equal(await refreshTwitchIngests(file, failing), false);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), INGESTS);
    assert.equal(twitchTemplateOf({ twitch_ingest_template: '', twitch_ingests_file: file }), 'rtmps://fra05.contribute.live-video.net/app/{stream_key}');
    // a cache that holds garbage: the default ingest, not an error
    await writeFile(file, '{"ingests": "nope"}');
    assert.equal(twitchTemplateOf({ twitch_ingest_template: '', twitch_ingests_file: file }), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
