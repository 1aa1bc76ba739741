import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { EgressError, errConfig } from '../contracts/errors.js';
import { logger } from '../log.js';
import * as D from './defaults.js';
import { cpuCostConfigSchema, latencyConfigSchema, serviceConfigSchema, type RawServiceConfig } from './schema.js';

/**
 * Service config loading. This module is the only place in the project that
 * reads `process.env`.
 */

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type LatencyConfig = z.infer<typeof latencyConfigSchema>;
export type CpuCostConfig = Omit<z.infer<typeof cpuCostConfigSchema>, 'memory_source'> & { memory_source: D.MemorySource };

type MutableServiceConfig = Omit<RawServiceConfig, 'backup_storage' | 'cpu_cost'> & { cpu_cost: CpuCostConfig };

/**
 * The loaded, defaulted, frozen service config. Field names are the YAML keys; durations are
 * milliseconds; `backup_storage` is folded into `backup`.
 */
export type ServiceConfig = DeepReadonly<MutableServiceConfig>;

export interface LoadConfigOptions {
  /** `--config` path (falls back to `EGRESS_CONFIG_FILE`). */
  readonly configFile?: string | undefined;
  /** `--config-body` YAML text (falls back to `EGRESS_CONFIG_BODY`); wins over the file. */
  readonly configBody?: string | undefined;
  /** Environment to read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** True for `serve`: no config anywhere → `missing config`. */
  readonly requireConfig: boolean;
}

const log = logger('config');

/** `missing config` (internal, as the original). */
export function errMissingConfig(): EgressError {
  return new EgressError('E_CONFIG', 'internal', 'missing config');
}

/** Loads the service config; throws EgressError (`missing config`, `could not parse config: …`, `config: …`). */
export function loadConfig(opts: LoadConfigOptions): ServiceConfig {
  const env = opts.env ?? process.env;
  const body = nonEmpty(opts.configBody) ?? nonEmpty(env['EGRESS_CONFIG_BODY']);
  const file = nonEmpty(opts.configFile) ?? nonEmpty(env['EGRESS_CONFIG_FILE']);

  let text: string | undefined = body;
  if (text === undefined && file !== undefined) {
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw errConfig(`could not read config file ${file}: ${(err as Error).message}`, err);
    }
  }
  if (text === undefined && opts.requireConfig) throw errMissingConfig();
  return parseConfig(text ?? '', env);
}

/** Parses YAML text into a ServiceConfig (env supplies LIVEKIT_* pre-fill and PATH for chrome). */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = {}): ServiceConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw errConfig(`could not parse config: ${(err as Error).message}`, err);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw errConfig(`could not parse config: expected a mapping at the top level`);
  }
  const input = stripNulls(doc, []) as Record<string, unknown>;

  // LIVEKIT_* pre-fill; keys present in the YAML override
  const prefill: Record<string, string | undefined> = {
    api_key: env['LIVEKIT_API_KEY'],
    api_secret: env['LIVEKIT_API_SECRET'],
    ws_url: env['LIVEKIT_WS_URL'],
  };
  for (const [k, v] of Object.entries(prefill)) {
    if (!(k in input) && v !== undefined) input[k] = v;
  }

  const parsed = serviceConfigSchema.safeParse(input);
  if (!parsed.success) throw errConfig(formatIssue(parsed.error.issues[0]), parsed.error);
  return deepFreeze(applyDefaults(parsed.data, env));
}

/** `config: unknown field "storage.s4"` / `config: invalid value for "health_port": …` */
function formatIssue(issue: z.ZodIssue | undefined): string {
  if (!issue) return 'config: invalid';
  const at = (p: (string | number)[]): string => p.map(String).join('.');
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const key = issue.keys[0] ?? '';
    return `config: unknown field "${at([...issue.path, key])}"`;
  }
  const message = issue.message.length > MAX_CONFIG_MESSAGE ? `${issue.message.slice(0, MAX_CONFIG_MESSAGE)}…` : issue.message;
  return `config: invalid value for "${at(issue.path)}": ${message}`;
}

const MAX_CONFIG_DEPTH = 32;
/** Longest config error message: a message quoting a huge value says what is wrong in its first words. */
const MAX_CONFIG_MESSAGE = 300;

/** YAML `key:` with nothing after it is null; Go leaves the field at its zero value. */
function stripNulls(v: unknown, pathSoFar: string[]): unknown {
  // No config is deeper than a few levels; an alias that contains itself is infinitely deep.
  if (pathSoFar.length > MAX_CONFIG_DEPTH) throw errConfig('could not parse config: nested too deeply (or an alias that contains itself)');
  if (Array.isArray(v)) return v.map((x) => stripNulls(x, [...pathSoFar, '[]']));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    const keepNullValues = pathSoFar.length === 1 && pathSoFar[0] === 'chrome_flags';
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === null && !keepNullValues) continue;
      out[k] = stripNulls(x, [...pathSoFar, k]);
    }
    return out;
  }
  return v;
}

function applyLatencyDefaults(l: LatencyConfig): LatencyConfig {
  const out = { ...l };
  if (out.jitter_buffer_latency === 0) out.jitter_buffer_latency = D.DEFAULT_JITTER_BUFFER_LATENCY_MS;
  if (out.audio_mixer_latency === 0) out.audio_mixer_latency = D.DEFAULT_AUDIO_MIXER_LATENCY_MS;
  if (out.pipeline_latency === 0) out.pipeline_latency = D.DEFAULT_PIPELINE_LATENCY_MS;
  if (out.rtp_max_allowed_ts_diff === 0) out.rtp_max_allowed_ts_diff = D.DEFAULT_RTP_MAX_ALLOWED_TS_DIFF_MS;
  // must absorb a jitter-buffer burst
  if (out.rtp_max_allowed_ts_diff < out.jitter_buffer_latency) out.rtp_max_allowed_ts_diff = out.jitter_buffer_latency;
  if (out.rtp_max_drift_adjustment === 0) out.rtp_max_drift_adjustment = D.DEFAULT_RTP_MAX_DRIFT_ADJUSTMENT_MS;
  if (out.old_packet_threshold === 0) out.old_packet_threshold = D.DEFAULT_OLD_PACKET_THRESHOLD_MS;
  return out;
}

/**
 * A `*_cpu_cost` the admission can use: positive and finite. Zero or unset means the default as in
 * the original; a negative or infinite one (which would admit everything, or nothing) is taken as
 * unset too.
 */
function validCost(v: number): boolean {
  return v > 0 && Number.isFinite(v);
}

function applyDefaults(raw: RawServiceConfig, env: NodeJS.ProcessEnv): MutableServiceConfig {
  const { backup_storage, cpu_cost: rawCost, ...rest } = raw;
  const c: MutableServiceConfig = { ...rest, cpu_cost: { ...rawCost, memory_source: D.DEFAULT_MEMORY_SOURCE } };

  if (backup_storage) {
    if (c.backup) log.warn('both "backup" and "backup_storage" are set; using "backup"');
    else c.backup = backup_storage;
  }

  if (c.logging.level === '') c.logging = { ...c.logging, level: D.DEFAULT_LOG_LEVEL };
  if (c.template_port === 0) c.template_port = D.DEFAULT_TEMPLATE_PORT;
  if (c.template_base === '') c.template_base = D.defaultTemplateBase(c.template_port);
  if (c.io_create_timeout === 0) c.io_create_timeout = D.DEFAULT_IO_CREATE_TIMEOUT_MS;
  if (c.io_update_timeout === 0) c.io_update_timeout = D.DEFAULT_IO_UPDATE_TIMEOUT_MS;
  if (c.io_workers <= 0) c.io_workers = D.DEFAULT_IO_WORKERS;
  if (c.max_upload_queue <= 0) c.max_upload_queue = D.DEFAULT_MAX_UPLOAD_QUEUE_MIN;
  if (c.pulse_sink_reap_grace_sec === 0) c.pulse_sink_reap_grace_sec = D.DEFAULT_PULSE_SINK_REAP_GRACE_SEC;

  const k = c.cpu_cost;
  if (k.max_cpu_utilization <= 0 || k.max_cpu_utilization > 1) {
    if (rawCost.max_cpu_utilization !== 0) log.warn('cpu_cost.max_cpu_utilization must be in (0, 1]; using the default');
    k.max_cpu_utilization = D.DEFAULT_MAX_CPU_UTILIZATION;
  }
  if (!validCost(k.room_composite_cpu_cost)) k.room_composite_cpu_cost = D.DEFAULT_ROOM_COMPOSITE_CPU_COST;
  // Unset, the page-less audio room composite takes a user-set audio_room_composite_cpu_cost (as in
  // the original), else its own measured default.
  if (!validCost(k.sdk_audio_room_composite_cpu_cost)) k.sdk_audio_room_composite_cpu_cost = validCost(k.audio_room_composite_cpu_cost) ? k.audio_room_composite_cpu_cost : D.DEFAULT_SDK_AUDIO_ROOM_COMPOSITE_CPU_COST;
  if (!validCost(k.audio_room_composite_cpu_cost)) k.audio_room_composite_cpu_cost = D.DEFAULT_AUDIO_ROOM_COMPOSITE_CPU_COST;
  if (k.sdk_audio_room_composite_memory_cost <= 0) k.sdk_audio_room_composite_memory_cost = k.memory_cost;
  if (!validCost(k.web_cpu_cost)) k.web_cpu_cost = D.DEFAULT_WEB_CPU_COST;
  if (!validCost(k.audio_web_cpu_cost)) k.audio_web_cpu_cost = D.DEFAULT_AUDIO_WEB_CPU_COST;
  if (!validCost(k.participant_cpu_cost)) k.participant_cpu_cost = D.DEFAULT_PARTICIPANT_CPU_COST;
  if (!validCost(k.track_composite_cpu_cost)) k.track_composite_cpu_cost = D.DEFAULT_TRACK_COMPOSITE_CPU_COST;
  if (!validCost(k.track_cpu_cost)) k.track_cpu_cost = D.DEFAULT_TRACK_CPU_COST;
  if (k.max_pulse_clients === 0) k.max_pulse_clients = D.DEFAULT_MAX_PULSE_CLIENTS;
  if (k.cpu_kill_grace_sec <= 0) k.cpu_kill_grace_sec = D.DEFAULT_CPU_KILL_GRACE_SEC;
  const ms = rawCost.memory_source;
  if (ms === '' || (D.MEMORY_SOURCES as readonly string[]).includes(ms)) {
    k.memory_source = ms === '' ? D.DEFAULT_MEMORY_SOURCE : (ms as D.MemorySource);
  } else {
    log.warn(`unknown cpu_cost.memory_source "${ms}", falling back to ${D.DEFAULT_MEMORY_SOURCE}`);
  }

  c.latency = applyLatencyDefaults(c.latency);
  const overrides: typeof c.latency_overrides = {};
  for (const [type, l] of Object.entries(c.latency_overrides)) {
    if (l) overrides[type as keyof typeof overrides] = applyLatencyDefaults(l);
  }
  c.latency_overrides = overrides;

  if (c.audio_tempo_controller.enabled) {
    const r = c.audio_tempo_controller.adjustment_rate;
    if (r <= 0 || r > D.MAX_AUDIO_TEMPO_ADJUSTMENT_RATE) {
      c.audio_tempo_controller = { ...c.audio_tempo_controller, adjustment_rate: D.DEFAULT_AUDIO_TEMPO_ADJUSTMENT_RATE };
    }
  }

  c.tmp_dir = c.tmp_dir === '' ? D.defaultTmpDir() : path.resolve(c.tmp_dir);
  if (c.chrome_path === '') c.chrome_path = findChrome(env['PATH'] ?? '') ?? '';
  return c;
}

/** First of CHROME_CANDIDATES that is an executable file on PATH, or null. */
export function findChrome(pathVar: string): string | null {
  const dirs = pathVar.split(path.delimiter).filter((d) => d !== '');
  for (const name of D.CHROME_CANDIDATES) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        if (fs.statSync(candidate).isFile()) {
          fs.accessSync(candidate, fs.constants.X_OK);
          return candidate;
        }
      } catch {
        /* not here */
      }
    }
  }
  return null;
}

/**
 * GST_DEBUG for child processes when the environment does not set one: from the logging level
 * (debug→3, info/warn→2, error→1) plus `rtmpclient:4,srtlib:1`. Undefined when GST_DEBUG is set.
 */
export function gstDebugFor(config: ServiceConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['GST_DEBUG'] !== undefined) return undefined;
  const parts: string[] = [];
  switch (config.logging.level) {
    case 'debug':
      parts.push('3');
      break;
    case 'info':
    case 'warn':
      parts.push('2');
      break;
    case 'error':
      parts.push('1');
      break;
  }
  parts.push('rtmpclient:4', 'srtlib:1');
  return parts.join(',');
}

/** Latency settings for a request type: `latency_overrides[type]` if set, else `latency`. */
export function latencyFor(config: ServiceConfig, requestType: string): DeepReadonly<LatencyConfig> {
  const o = (config.latency_overrides as Record<string, DeepReadonly<LatencyConfig> | undefined>)[requestType];
  return o ?? config.latency;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}
