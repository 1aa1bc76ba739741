import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EgressError } from '../../main/contracts/errors.js';
import { findChrome, gstDebugFor, latencyFor, loadConfig, parseConfig } from '../../main/config/index.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'egress-config-test-'));
}

function fails(body: string, message: string): void {
  assert.throws(
    () => parseConfig(body),
    (e: unknown) => {
      assert.ok(e instanceof EgressError, String(e));
      assert.equal(e.message, message);
      return true;
    },
  );
}

test('no config at all (record): every default', () => {
  const c = loadConfig({ requireConfig: false, env: {} });
  assert.equal(c.api_key, '');
  assert.equal(c.ws_url, '');
  assert.equal(c.redis, undefined);
  assert.equal(c.storage, undefined);
  assert.equal(c.backup, undefined);
  assert.equal(c.logging.level, 'info');
  assert.equal(c.template_port, 7980);
  assert.equal(c.template_base, 'http://localhost:7980/');
  assert.equal(c.health_port, 0);
  assert.equal(c.max_upload_queue, 60);
  assert.equal(c.io_create_timeout, 15_000);
  assert.equal(c.io_update_timeout, 30_000);
  assert.equal(c.io_workers, 5);
  assert.equal(c.pulse_sink_reap_grace_sec, 30);
  assert.equal(c.tmp_dir, path.join(os.tmpdir(), 'egress'));
  assert.equal(c.chrome_path, '');
  assert.deepEqual(
    { ...c.cpu_cost },
    {
      max_cpu_utilization: 0.8,
      max_memory: 0,
      memory_cost: 0,
      room_composite_cpu_cost: 1.6,
      audio_room_composite_cpu_cost: 0.8,
      sdk_audio_room_composite_cpu_cost: 0.2,
      sdk_audio_room_composite_memory_cost: 0,
      web_cpu_cost: 2,
      audio_web_cpu_cost: 0.8,
      participant_cpu_cost: 0.5,
      track_composite_cpu_cost: 0.5,
      track_cpu_cost: 0.2,
      max_pulse_clients: 60,
      memory_source: 'proc_rss',
      memory_kill_grace_sec: 0,
      cpu_kill_grace_sec: 30,
    },
  );
  assert.deepEqual(
    { ...c.latency },
    {
      jitter_buffer_latency: 2000,
      audio_mixer_latency: 2750,
      pipeline_latency: 3000,
      rtp_max_allowed_ts_diff: 5000,
      rtp_max_drift_adjustment: 5,
      rtp_drift_adjustment_window_percent: 0,
      old_packet_threshold: 2200,
    },
  );
});

test('missing config when required', () => {
  assert.throws(() => loadConfig({ requireConfig: true, env: {} }), (e: unknown) => e instanceof EgressError && e.message === 'missing config');
});

test('file from --config or EGRESS_CONFIG_FILE; body wins over file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'egress.yaml');
  fs.writeFileSync(file, 'cluster_id: from-file\nhealth_port: 8080\n');
  assert.equal(loadConfig({ requireConfig: true, configFile: file, env: {} }).cluster_id, 'from-file');
  assert.equal(loadConfig({ requireConfig: true, env: { EGRESS_CONFIG_FILE: file } }).cluster_id, 'from-file');
  assert.equal(loadConfig({ requireConfig: true, configFile: file, configBody: 'cluster_id: from-body\n', env: {} }).cluster_id, 'from-body');
  assert.equal(loadConfig({ requireConfig: true, env: { EGRESS_CONFIG_FILE: file, EGRESS_CONFIG_BODY: 'cluster_id: env-body\n' } }).cluster_id, 'env-body');
  // explicit options win over the environment
  assert.equal(loadConfig({ requireConfig: true, configBody: 'cluster_id: opt\n', env: { EGRESS_CONFIG_BODY: 'cluster_id: env\n' } }).cluster_id, 'opt');
  assert.throws(() => loadConfig({ requireConfig: true, configFile: path.join(dir, 'nope.yaml'), env: {} }), /could not read config file/);
  fs.rmSync(dir, { recursive: true });
});

test('LIVEKIT_* env pre-fill; YAML overrides', () => {
  const env = { LIVEKIT_API_KEY: 'envkey', LIVEKIT_API_SECRET: 'envsecret', LIVEKIT_WS_URL: 'ws://env' };
  const a = loadConfig({ requireConfig: false, env });
  assert.deepEqual([a.api_key, a.api_secret, a.ws_url], ['envkey', 'envsecret', 'ws://env']);
  const b = loadConfig({ requireConfig: true, configBody: 'api_key: yamlkey\nws_url: wss://yaml\n', env });
  assert.deepEqual([b.api_key, b.api_secret, b.ws_url], ['yamlkey', 'envsecret', 'wss://yaml']);
});

test('unknown fields name their path', () => {
  const cases: [string, string][] = [
    ['foo: 1\n', 'config: unknown field "foo"'],
    ['storage:\n  s4: {}\n', 'config: unknown field "storage.s4"'],
    ['storage:\n  s3:\n    bucket: b\n    acess_key: x\n', 'config: unknown field "storage.s3.acess_key"'],
    ['redis:\n  adress: localhost:6379\n', 'config: unknown field "redis.adress"'],
    ['cpu_cost:\n  web_cost: 1\n', 'config: unknown field "cpu_cost.web_cost"'],
    ['latency_overrides:\n  web:\n    jitter: 1s\n', 'config: unknown field "latency_overrides.web.jitter"'],
    ['debug:\n  enable_pprof: true\n', 'config: unknown field "debug.enable_pprof"'],
  ];
  for (const [body, message] of cases) fails(body, message);
});

test('invalid values name the field', () => {
  const cases: [string, string][] = [
    ['health_port: abc\n', 'config: invalid value for "health_port": Expected number, received string'],
    ['health_port: 70000\n', 'config: invalid value for "health_port": Number must be less than or equal to 65535'],
    ['enable_chrome_sandbox: "yes"\n', 'config: invalid value for "enable_chrome_sandbox": Expected boolean, received string'],
    ['session_limits:\n  file_output_max_duration: 5x\n', 'config: invalid value for "session_limits.file_output_max_duration": invalid duration "5x"'],
    ['cpu_cost:\n  max_cpu_utilization: high\n', 'config: invalid value for "cpu_cost.max_cpu_utilization": Expected number, received string'],
    ['redis:\n  sentinel_addresses: host\n', 'config: invalid value for "redis.sentinel_addresses": Expected array, received string'],
  ];
  for (const [body, message] of cases) fails(body, message);
  assert.throws(() => parseConfig('latency_overrides:\n  bogus: {}\n'), /^EgressError: config: invalid value for "latency_overrides.bogus"/);
});

test('YAML errors: could not parse config', () => {
  assert.throws(() => parseConfig('a: [\n'), (e: unknown) => e instanceof EgressError && e.message.startsWith('could not parse config: '));
  assert.throws(() => parseConfig('- a\n- b\n'), (e: unknown) => e instanceof EgressError && e.message.startsWith('could not parse config: '));
});

test('values: durations, storage, backup_storage alias, empty sections, zero → default', () => {
  const c = parseConfig(
    [
      'io_create_timeout: 1m30s',
      'io_update_timeout: 10',
      'session_limits:',
      '  file_output_max_duration: 2h',
      '  file_output_max_size: 300000',
      'latency:',
      '  jitter_buffer_latency: 6s',
      '  rtp_max_drift_adjustment: 10ms',
      'latency_overrides:',
      '  web:',
      '    pipeline_latency: 1s',
      'storage:',
      '  prefix: rec',
      '  s3:',
      '    bucket: bkt',
      '    max_retry_delay: 5s',
      'backup_storage:',
      '  azure:',
      '    container_name: c',
      'redis:',
      'chrome_flags:',
      '  disable-gpu: null',
      '  window-size: "1,1"',
      'cpu_cost:',
      '  max_cpu_utilization: 1.5',
      '  audio_room_composite_cpu_cost: 0.75',
      '  memory_source: bogus',
      'audio_tempo_controller:',
      '  enabled: true',
      '  adjustment_rate: 0.5',
      'template_port: 9000',
      '',
    ].join('\n'),
  );
  assert.equal(c.io_create_timeout, 90_000);
  assert.equal(c.io_update_timeout, 10_000);
  assert.equal(c.session_limits.file_output_max_duration, 7_200_000);
  assert.equal(c.session_limits.file_output_max_size, 300000);
  assert.equal(c.latency.jitter_buffer_latency, 6000);
  // rtp_max_allowed_ts_diff must cover the jitter buffer
  assert.equal(c.latency.rtp_max_allowed_ts_diff, 6000);
  assert.equal(c.latency.rtp_max_drift_adjustment, 10);
  assert.equal(latencyFor(c, 'web').pipeline_latency, 1000);
  assert.equal(latencyFor(c, 'web').jitter_buffer_latency, 2000);
  assert.equal(latencyFor(c, 'room_composite').jitter_buffer_latency, 6000);
  assert.equal(c.storage?.prefix, 'rec');
  assert.equal(c.storage?.s3?.bucket, 'bkt');
  assert.equal(c.storage?.s3?.max_retry_delay, 5000);
  assert.equal(c.backup?.azure?.container_name, 'c');
  assert.equal(c.redis, undefined);
  assert.deepEqual({ ...c.chrome_flags }, { 'disable-gpu': null, 'window-size': '1,1' });
  assert.equal(c.cpu_cost.max_cpu_utilization, 0.8);
  assert.equal(c.cpu_cost.sdk_audio_room_composite_cpu_cost, 0.75);
  assert.equal(c.cpu_cost.memory_source, 'proc_rss');
  assert.equal(c.audio_tempo_controller.adjustment_rate, 0.05);
  assert.equal(c.template_base, 'http://localhost:9000/');
  assert.equal(parseConfig('tmp_dir: rel/tmp\n').tmp_dir, path.resolve('rel/tmp'));
  assert.equal(parseConfig('backup:\n  gcp:\n    bucket: g\n').backup?.gcp?.bucket, 'g');
});

test('config is frozen', () => {
  const c = parseConfig('storage:\n  s3:\n    bucket: b\n');
  assert.throws(() => {
    (c as { cluster_id: string }).cluster_id = 'x';
  }, TypeError);
  assert.throws(() => {
    (c.storage?.s3 as { bucket: string }).bucket = 'x';
  }, TypeError);
});

test('chrome_path: explicit, else first candidate on PATH', () => {
  const dir = tmpDir();
  const exe = path.join(dir, 'chromium-browser');
  fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'chromium'), 'not executable', { mode: 0o644 });
  assert.equal(findChrome(dir), exe);
  assert.equal(parseConfig('', { PATH: dir }).chrome_path, exe);
  assert.equal(parseConfig('chrome_path: /opt/chrome\n', { PATH: dir }).chrome_path, '/opt/chrome');
  assert.equal(findChrome(''), null);
  fs.rmSync(dir, { recursive: true });
});

test('GST_DEBUG from the logging level unless set', () => {
  assert.equal(gstDebugFor(parseConfig(''), {}), '2,rtmpclient:4,srtlib:1');
  assert.equal(gstDebugFor(parseConfig('logging:\n  level: debug\n'), {}), '3,rtmpclient:4,srtlib:1');
  assert.equal(gstDebugFor(parseConfig('logging:\n  level: error\n'), {}), '1,rtmpclient:4,srtlib:1');
  assert.equal(gstDebugFor(parseConfig(''), { GST_DEBUG: '4' }), undefined);
});
