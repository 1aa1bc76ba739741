/** Unit tests of the worker's pieces: admission monitor, IO reporter, IPC schemas, config body, Redis options. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EgressInfo, EgressStatus, WebEgressRequest } from '@livekit/protocol';
import { parseConfig } from '../../main/config/index.js';
import { costOf } from '../../main/request/index.js';
import { PsrpcError, type PsrpcClient } from '../../main/rpc/psrpc/index.js';
import { configBodyOf } from '../../main/service/config-body.js';
import { abortedReply, exitText } from '../../main/service/handler-process.js';
import { IoReporter } from '../../main/service/io.js';
import { encodeInfo, parseHandlerMessage, parseWorkerMessage } from '../../main/service/ipc.js';
import { Monitor, RESERVATION_MS } from '../../main/service/monitor.js';
import { redisOptionsOf } from '../../main/service/redis.js';
import { setLogLevel } from '../../main/log.js';

setLogLevel(false);
const web = (audioOnly = false) => ({ case: 'web' as const, value: new WebEgressRequest({ url: 'https://x', audioOnly }) });

test('admission: idle = all cores; busy = cores × max_cpu_utilization − Σ max(reservation, measured); reservation held 15 s', () => {
  let now = 1_000_000;
  const config = parseConfig('cpu_cost: {web_cpu_cost: 1, audio_web_cpu_cost: 0.5, max_cpu_utilization: 0.8}');
  const m = new Monitor(config, { cores: 2, now: () => now });
  const cost = costOf(web(), config);
  assert.deepEqual(cost, { cpu: 1, memoryGb: 0 });
  assert.equal(m.availableCpu(), 2);
  assert.ok(m.canAccept(cost, true));
  m.accept('EG_a', cost, true);
  assert.ok(Math.abs(m.availableCpu() - 0.6) < 1e-9);
  assert.equal(m.rejectReason(cost, true), 'cpu');
  assert.ok(m.canAccept(costOf(web(true), config), true), 'audio web (0.5) still fits');
  now += RESERVATION_MS; // reservation expired, nothing measured: free again
  assert.ok(Math.abs(m.availableCpu() - 1.6) < 1e-9);
  assert.equal(costOf(web(), config, 1.7).cpu, 1.7, 'estimated_cpu overrides');
  m.release('EG_a');
  assert.equal(m.availableCpu(), 2);
});

test('admission: memory limit with 1 GB headroom; Chrome client budget', () => {
  const config = parseConfig('cpu_cost: {web_cpu_cost: 0.1, max_memory: 3, memory_cost: 1, max_pulse_clients: 8, max_cpu_utilization: 1}');
  const m = new Monitor(config, { cores: 16 });
  const cost = costOf(web(), config);
  assert.equal(m.rejectReason(cost, true), null); // 0 + 0 + 1 + 1 < 3
  m.accept('EG_a', cost, true);
  assert.equal(m.rejectReason(cost, true), 'memory'); // 0 + 1 + 1 + 1 >= 3
  const loose = parseConfig('cpu_cost: {web_cpu_cost: 0.1, max_pulse_clients: 8, max_cpu_utilization: 1}');
  const p = new Monitor(loose, { cores: 16 });
  p.accept('EG_1', costOf(web(), loose), true);
  assert.equal(p.rejectReason(costOf(web(), loose), true), null); // 4 + 4 <= 8
  p.accept('EG_2', costOf(web(), loose), true);
  assert.equal(p.rejectReason(costOf(web(), loose), true), 'pulse');
});

function info(id: string, status: EgressStatus): EgressInfo {
  return new EgressInfo({ egressId: id, status });
}

class FakeIo {
  readonly calls: Array<{ method: string; id: string; status: EgressStatus }> = [];
  failures = 0;
  delayMs = 0;
  async call(method: { method: string }, _topic: unknown, req: EgressInfo): Promise<void> {
    this.calls.push({ method: method.method, id: req.egressId, status: req.status });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failures > 0) {
      this.failures--;
      throw new PsrpcError('unavailable', 'no response from servers');
    }
  }
}

test('IO reporter: CreateEgress first, then ordered UpdateEgress per egress with latest-snapshot coalescing', async () => {
  const fake = new FakeIo();
  fake.delayMs = 30;
  const io = new IoReporter(fake as unknown as PsrpcClient, { createTimeoutMs: 1000, updateTimeoutMs: 1000, workers: 2 });
  const created = io.create(info('EG_a', EgressStatus.EGRESS_STARTING));
  io.update(info('EG_a', EgressStatus.EGRESS_ACTIVE));
  io.update(info('EG_a', EgressStatus.EGRESS_ENDING)); // replaces the unsent ACTIVE
  io.update(info('EG_b', EgressStatus.EGRESS_ACTIVE));
  await created;
  await new Promise((r) => setTimeout(r, 10));
  io.update(info('EG_a', EgressStatus.EGRESS_COMPLETE));
  await io.drain(5000);
  const a = fake.calls.filter((c) => c.id === 'EG_a');
  assert.deepEqual(a.map((c) => `${c.method}:${EgressStatus[c.status]}`), ['CreateEgress:EGRESS_STARTING', 'UpdateEgress:EGRESS_ENDING', 'UpdateEgress:EGRESS_COMPLETE']);
  assert.ok(io.stats.coalesced >= 1);
  assert.ok(fake.calls.some((c) => c.id === 'EG_b'));
});

test('IO reporter: retries "no response" with backoff (unhealthy meanwhile), delivering the newest snapshot', async () => {
  const fake = new FakeIo();
  fake.failures = 2;
  const io = new IoReporter(fake as unknown as PsrpcClient, { createTimeoutMs: 1000, updateTimeoutMs: 1000, workers: 1, backoffStartMs: 20 });
  io.update(info('EG_a', EgressStatus.EGRESS_ACTIVE));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(io.healthy, false);
  io.update(info('EG_a', EgressStatus.EGRESS_COMPLETE));
  await io.drain(5000);
  assert.equal(io.healthy, true);
  assert.equal(io.stats.retries, 2);
  assert.equal(fake.calls.at(-1)?.status, EgressStatus.EGRESS_COMPLETE);
  assert.ok(!fake.calls.slice(2).some((c) => c.status === EgressStatus.EGRESS_ACTIVE), 'the stale snapshot is not re-sent after the newer one');
});

test('IPC messages are validated on both sides', () => {
  assert.equal(parseWorkerMessage({ type: 'stop', seq: 1, reason: 'StopEgress API' })?.type, 'stop');
  assert.equal(parseWorkerMessage({ type: 'stop', seq: 1, reason: 'rm -rf' }), null);
  assert.equal(parseWorkerMessage({ type: 'start', request: 'AAA=', nowMs: 1, config: '', extra: 1 }), null);
  assert.equal(parseWorkerMessage('garbage'), null);
  assert.equal(parseHandlerMessage({ type: 'update', info: encodeInfo(info('EG_a', EgressStatus.EGRESS_ACTIVE)) })?.type, 'update');
  assert.equal(parseHandlerMessage({ type: 'update', info: '<not base64>' }), null);
  assert.equal(parseHandlerMessage({ type: 'finished' }), null);
  assert.equal(parseHandlerMessage(null), null);
  // Upload metrics forwarded by the handler: only known output types / statuses, finite times.
  const upload = { kind: 'upload', outputType: 'mp4', status: 'success', customEndpoint: false, elapsedMs: 12.5 };
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: upload })?.type, 'uploadMetric');
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: { kind: 'backupWrite', outputType: 'm3u8' } })?.type, 'uploadMetric');
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: { ...upload, outputType: 'exe' } }), null);
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: { ...upload, status: 'teapot' } }), null);
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: { ...upload, elapsedMs: -1 } }), null);
  assert.equal(parseHandlerMessage({ type: 'uploadMetric', observation: { ...upload, extra: 1 } }), null);
});

test('handler exit text and StopEgress reply while STARTING', () => {
  assert.equal(exitText(null, 'SIGKILL'), 'signal: killed');
  assert.equal(exitText(1, null), 'exit status 1');
  const r = abortedReply(info('EG_a', EgressStatus.EGRESS_STARTING));
  assert.equal(r.status, EgressStatus.EGRESS_ABORTED);
  assert.equal(r.error, 'Stop called before pipeline could start');
  assert.equal(r.errorCode, 412);
  assert.equal(abortedReply(info('EG_a', EgressStatus.EGRESS_ENDING)).status, EgressStatus.EGRESS_ENDING);
});

test('config body for handlers round-trips (durations stay milliseconds)', () => {
  const c = parseConfig('redis: {address: "h:1"}\nsession_limits: {file_output_max_duration: 4s}\nio_update_timeout: 20\nlatency_overrides: {web: {pipeline_latency: 2s}}\n');
  assert.deepEqual(parseConfig(configBodyOf(c)), c);
});

test('redis options: address, credentials, db, TLS, sentinel; none → error', () => {
  const o = redisOptionsOf(parseConfig('redis: {address: "10.0.0.1:6380", username: u, password: p, db: 2, use_tls: true}'));
  assert.equal(o.host, '10.0.0.1');
  assert.equal(o.port, 6380);
  assert.equal(o.username, 'u');
  assert.equal(o.password, 'p');
  assert.equal(o.db, 2);
  assert.ok(o.tls);
  const s = redisOptionsOf(parseConfig('redis: {sentinel_master_name: m, sentinel_addresses: ["a:26379", "b"], sentinel_password: sp}'));
  assert.equal(s.name, 'm');
  assert.deepEqual(s.sentinels, [{ host: 'a', port: 26379 }, { host: 'b', port: 26379 }]);
  assert.equal(s.sentinelPassword, 'sp');
  assert.throws(() => redisOptionsOf(parseConfig('')), /redis configuration is required/);
});

test('overload: 10 consecutive samples over the threshold with > 1 egress → drain the one most over its cost; kill it after cpu_kill_grace_sec; memory over max_memory → kill the biggest', () => {
  let now = 1_000_000;
  let busy = 0;
  let total = 0;
  let load = 1;
  const hostCpu = (): { idle: number; total: number } => {
    total += 100;
    busy += 100 * load;
    return { idle: total - busy, total };
  };
  const config = parseConfig('cpu_cost: {web_cpu_cost: 0.5, audio_web_cpu_cost: 0.1, max_cpu_utilization: 0.8, cpu_kill_grace_sec: 5}');
  const m = new Monitor(config, { cores: 2, now: () => now, hostCpu });
  const events: string[] = [];
  m.on('cpu-drain', (id) => events.push(`drain ${id}`));
  m.on('cpu-kill', (id) => events.push(`kill ${id}`));
  m.on('oom-kill', (id) => events.push(`oom ${id}`));
  const tick = (): void => {
    now += 1000;
    m.sample();
  };
  m.accept('EG_video', costOf(web(), config), true);
  tick(); // first sample: no load known yet
  for (let i = 0; i < 12; i++) tick();
  assert.deepEqual(events, [], 'one egress is never drained');
  m.accept('EG_audio', costOf(web(true), config), true);
  load = 0.9; // under the 0.95 threshold (max_cpu_utilization < 0.95)
  for (let i = 0; i < 12; i++) tick();
  assert.deepEqual(events, []);
  load = 1;
  for (let i = 0; i < 9; i++) tick();
  load = 0.5; // the run of overloaded samples is broken: it starts again
  tick();
  load = 1;
  for (let i = 0; i < 9; i++) tick();
  assert.deepEqual(events, []);
  tick();
  // Neither has a measured usage: "most CPU above its cost" picks the cheaper one (0 − 0.1 > 0 − 0.5).
  assert.deepEqual(events, ['drain EG_audio']);
  for (let i = 0; i < 4; i++) tick();
  assert.deepEqual(events, ['drain EG_audio'], 'no kill before the grace, no second drain while one drains');
  tick();
  assert.deepEqual(events, ['drain EG_audio', 'kill EG_audio']);
  m.release('EG_audio');
  m.release('EG_video');

  const mem = parseConfig('cpu_cost: {web_cpu_cost: 0.1, max_memory: 0.01, memory_kill_grace_sec: 2}');
  const mm = new Monitor(mem, { cores: 2, now: () => now, hostCpu: () => null });
  const oom: string[] = [];
  mm.on('oom-kill', (id, gb) => oom.push(`${id} ${gb > 0.01 ? 'over' : 'under'}`));
  mm.accept('EG_small', costOf(web(), mem), true);
  mm.accept('EG_big', costOf(web(), mem), true);
  mm.setPid('EG_big', process.pid); // this test process: well over 10 MB
  now += 1000;
  mm.sample();
  now += 1000;
  mm.sample();
  assert.deepEqual(oom, [], 'not before memory_kill_grace_sec');
  now += 1000;
  mm.sample();
  assert.deepEqual(oom, ['EG_big over']);
});
