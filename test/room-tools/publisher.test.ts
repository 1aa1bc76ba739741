/**
 * The room test tools checked on a real livekit-server: two synthetic publishers (VP8 and H264,
 * own colour and tone each) recorded by plain rtc-node subscribers (rtc-recorder.ts), then analysed
 * with room-media.ts. Proves the publishers' media are present and in sync as a subscriber receives
 * them, so a later egress failure is the egress's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livekitBinary, startLivekit, type LivekitInstance } from '../harness/livekit.js';
import { startRedis, type RedisInstance } from '../harness/redis.js';
import { disposeRtc, type PublisherHandle } from '../support/publisher.js';
import { startRemotePublisher } from '../support/remote-publisher.js';
import { startRtcRecorder } from '../support/rtc-recorder.js';
import { analyseRoomMedia, formatRoomMedia, presence } from '../support/room-media.js';

const skip = livekitBinary() ? false : 'livekit-server binary missing (bash scripts/setup.sh --test)';
let redis: RedisInstance | undefined;
let lk: LivekitInstance | undefined;
let dir = '';

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'room-tools-'));
  redis = await startRedis();
  lk = await startLivekit({ redis });
});

after(async () => {
  await lk?.stop();
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await disposeRtc();
});

const RECORD_S = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('synthetic publishers: colour and tone as an rtc-node subscriber receives them (A/V offset printed)', { skip, timeout: 90_000 }, async () => {
  const l = lk as LivekitInstance;
  const base = { wsUrl: l.wsUrl, apiKey: l.apiKey, apiSecret: l.apiSecret, room: 'room-tools' };
  const specs = [
    { identity: 'pub-vp8', colour: [220, 40, 40] as const, toneHz: 523, codec: 'vp8' as const },
    { identity: 'pub-h264', colour: [40, 80, 220] as const, toneHz: 784, codec: 'h264' as const },
  ];
  const epochMs = Math.ceil(Date.now() / 1000) * 1000 + 1000;
  const recs = await Promise.all(specs.map((s) => startRtcRecorder({ ...base, participant: s.identity, path: join(dir, `${s.identity}.mkv`) })));
  const pubs: PublisherHandle[] = [];
  try {
    for (const s of specs) pubs.push(await startRemotePublisher({ ...base, identity: s.identity, colour: s.colour, toneHz: s.toneHz, epochMs, video: { codec: s.codec } }));
    for (const p of pubs) assert.ok(p.trackSids.video && p.trackSids.audio, `${p.identity} published both tracks`);
    await Promise.all(recs.map((r) => r.subscribed));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(RECORD_S * 1000);
    const cpu = process.cpuUsage(cpu0);
    console.log(`# test process CPU while publishing 2 + recording 2: ${(((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100).toFixed(0)} % of one core`);
    for (const p of pubs) console.log(`# ${p.identity} source stats ${JSON.stringify(p.stats)}`);
  } finally {
    await Promise.all(pubs.map((p) => p.stop()));
  }
  const results = await Promise.all(recs.map((r) => r.stop()));
  for (const r of results) {
    const { gstOutput: _ignored, ...rest } = r;
    console.log(`# recorder ${JSON.stringify(rest)}`);
  }

  for (const [i, s] of specs.entries()) {
    const file = (results[i] as { path: string }).path;
    // The recorded participant's own picture fills the frame; the other publisher's tone must be absent.
    const other = specs[1 - i] as (typeof specs)[number];
    const report = await analyseRoomMedia(file, [
      { identity: s.identity, rect: { x: 0, y: 0, w: 640, h: 360 }, colour: s.colour, toneHz: s.toneHz },
      { identity: other.identity, colour: other.colour, toneHz: other.toneHz },
    ]);
    console.log(`# ${s.codec} ${formatRoomMedia(report).replace(/\n/g, '\n#   ')}`);
    const me = report.publishers[0] as (typeof report.publishers)[number];
    console.log(`#   offsets (ms) ${me.sync.offsets.map((x) => Math.round(x * 1000)).join(' ')}`);
    // Whole seconds fully inside the recording, skipping the first one (subscription start-up).
    const from = Math.ceil(me.flashOnsets[0] ?? 1);
    const to = report.seconds - 1;
    const pres = presence(report, s.identity, from, to);
    assert.ok(pres.seconds >= RECORD_S - 4, `${s.identity}: ${pres.seconds} s analysed`);
    assert.ok(pres.colour >= 0.95, `${s.identity} colour present in ${(pres.colour * 100).toFixed(0)} % of seconds`);
    assert.ok(pres.tone >= 0.95, `${s.identity} tone present in ${(pres.tone * 100).toFixed(0)} % of seconds`);
    assert.equal(presence(report, other.identity, from, to).tone, 0, `${other.identity}'s tone must not leak into ${s.identity}'s audio`);
    assert.equal(me.channel, 'both', 'mono publisher → both channels');
    assert.ok(me.sync.pairs >= pres.seconds - 2, `${s.identity}: ${me.sync.pairs} flash/beep pairs`);
    // Spread around the median: the source schedule is exact, the receive path adds a constant bias.
    const spread = me.sync.offsets.map((o) => Math.abs(o - me.sync.median)).sort((a, b) => a - b);
    const spreadP80 = spread[Math.floor(spread.length * 0.8)] as number;
    console.log(`#   ${s.identity}: median ${(me.sync.median * 1000).toFixed(0)} ms, p80 |offset| ${(me.sync.p80 * 1000).toFixed(0)} ms, p80 |offset − median| ${(spreadP80 * 1000).toFixed(0)} ms`);
    // The offset is printed, not gated: this recorder stamps audio by its arrival in this same
    // Node process, which also runs both publishers' media loops, so its figure moves with the
    // process's event-loop stalls (audio pushed up to ~230 ms late measured on 2 cores) — repeated
    // runs on an idle machine gave p80 55 ms to 376 ms. It describes the tools, not the product.
    // ROOM_TOOLS_MAX_P80_MS turns it into a gate for a machine where it is stable.
    const gate = process.env['ROOM_TOOLS_MAX_P80_MS'];
    if (gate !== undefined) {
      assert.ok(spreadP80 <= 0.04, `${s.identity}: offset spread p80 ${(spreadP80 * 1000).toFixed(0)} ms`);
      assert.ok(me.sync.p80 <= Number(gate) / 1000, `${s.identity}: |offset| p80 ${(me.sync.p80 * 1000).toFixed(0)} ms`);
    }
  }
});
