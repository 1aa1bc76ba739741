import { z } from 'zod';
import { goDurationMs, storageConfigSchema } from '../contracts/storage.js';

/**
 * The YAML schema of the service config, with the original's key names. Every
 * object is `.strict()`: an unknown key is an error naming its path. Durations accept Go duration
 * strings (`5s`, `2750ms`) or a number of seconds and are stored as milliseconds. Values left at
 * zero here are replaced by their defaults in load.ts (the original's "0 means default").
 */

const str = z.string().default('');
const bool = z.boolean().default(false);
const int = z.number().int().default(0);
const num = z.number().default(0);
const durationMs = goDurationMs.default(0);

export const redisTlsSchema = z
  .object({
    enabled: bool,
    insecure_skip_verify: bool,
    ca_cert_file: str,
    cert_file: str,
    key_file: str,
  })
  .strict();

export const redisConfigSchema = z
  .object({
    address: str,
    username: str,
    password: str,
    db: int,
    /** Deprecated in favour of `tls`. */
    use_tls: bool,
    tls: redisTlsSchema.optional(),
    sentinel_master_name: str,
    sentinel_username: str,
    sentinel_password: str,
    sentinel_addresses: z.array(z.string()).default([]),
    cluster_addresses: z.array(z.string()).default([]),
    /** Milliseconds (integers, as the original). */
    dial_timeout: int,
    read_timeout: int,
    write_timeout: int,
    max_redirects: z.number().int().optional(),
    pool_timeout: durationMs,
    pool_size: int,
  })
  .strict();
export type RedisConfig = z.infer<typeof redisConfigSchema>;

export const loggingConfigSchema = z
  .object({
    json: bool,
    level: z.string().default(''),
    component_levels: z.record(z.string()).default({}),
    sample: bool,
    sample_initial: int,
    sample_interval: int,
    item_sample_seconds: int,
    item_sample_initial: int,
    item_sample_interval: int,
  })
  .strict();
export type LoggingConfig = z.infer<typeof loggingConfigSchema>;

export const sessionLimitsSchema = z
  .object({
    file_output_max_duration: durationMs,
    /** Bytes of everything in the egress temp dir; 0 = off. */
    file_output_max_size: int,
    stream_output_max_duration: durationMs,
    segment_output_max_duration: durationMs,
    image_output_max_duration: durationMs,
  })
  .strict();
export type SessionLimits = z.infer<typeof sessionLimitsSchema>;

export const cpuCostConfigSchema = z
  .object({
    max_cpu_utilization: num,
    max_memory: num,
    memory_cost: num,
    room_composite_cpu_cost: num,
    audio_room_composite_cpu_cost: num,
    sdk_audio_room_composite_cpu_cost: num,
    sdk_audio_room_composite_memory_cost: num,
    web_cpu_cost: num,
    audio_web_cpu_cost: num,
    participant_cpu_cost: num,
    track_composite_cpu_cost: num,
    track_cpu_cost: num,
    max_pulse_clients: int,
    memory_source: z.string().default(''),
    memory_kill_grace_sec: int,
    cpu_kill_grace_sec: int,
  })
  .strict();

export const latencyConfigSchema = z
  .object({
    jitter_buffer_latency: durationMs,
    audio_mixer_latency: durationMs,
    pipeline_latency: durationMs,
    // settable under their documented names
    rtp_max_allowed_ts_diff: durationMs,
    rtp_max_drift_adjustment: durationMs,
    rtp_drift_adjustment_window_percent: num,
    old_packet_threshold: durationMs,
  })
  .strict();

export const REQUEST_TYPES = ['room_composite', 'web', 'participant', 'track_composite', 'track', 'template', 'media'] as const;

export const debugConfigSchema = z
  .object({
    enable_profiling: bool,
    enable_track_logging: bool,
    enable_stream_logging: bool,
    enable_chrome_logging: bool,
    path_prefix: str,
    // inline upload config for debug artefacts
    prefix: str,
    generate_presigned_url: bool,
    s3: storageConfigSchema.shape.s3,
    azure: storageConfigSchema.shape.azure,
    gcp: storageConfigSchema.shape.gcp,
    alioss: storageConfigSchema.shape.alioss,
  })
  .strict();

export const audioTempoControllerSchema = z
  .object({
    enabled: bool,
    adjustment_rate: num,
  })
  .strict();

export const testOverridesSchema = z
  .object({
    failure_injection_room: str,
    disconnect_injection_room: str,
  })
  .strict();

const nonNegInt = z.number().int().nonnegative().default(0);
const port = z.number().int().min(0).max(65535).default(0);

export const serviceConfigSchema = z
  .object({
    // required for room-based egress
    redis: redisConfigSchema.optional(),
    api_key: str,
    api_secret: str,
    ws_url: str,

    logging: loggingConfigSchema.default({}),
    template_base: str,
    cluster_id: str,
    enable_chrome_sandbox: bool,
    max_upload_queue: int,
    disallow_local_storage: bool,
    io_create_timeout: durationMs,
    io_update_timeout: durationMs,
    io_selection_timeout: durationMs,
    io_workers: int,

    session_limits: sessionLimitsSchema.default({}),
    storage: storageConfigSchema.optional(),
    backup: storageConfigSchema.optional(),
    /** README spelling of `backup`; both are accepted. */
    backup_storage: storageConfigSchema.optional(),
    s3_assume_role_key: str,
    s3_assume_role_secret: str,
    s3_assume_role_arn: str,
    s3_assume_role_external_id: str,

    insecure: bool,
    debug: debugConfigSchema.default({}),
    chrome_flags: z.record(z.union([z.string(), z.number(), z.boolean(), z.null()])).default({}),
    latency: latencyConfigSchema.default({}),
    latency_overrides: z.record(z.enum(REQUEST_TYPES), latencyConfigSchema).default({}),
    video_encoder_threads: nonNegInt,
    /** Page egress video encoder: auto (x264 unless the raw path cannot run in real time), x264, browser (WebCodecs in the page). */
    video_encode_path: z.enum(['auto', 'x264', 'browser']).default('auto'),
    enable_one_shot_sender_report_sync: bool,
    enable_sync_engine: bool,
    audio_tempo_controller: audioTempoControllerSchema.default({}),
    test_overrides: testOverridesSchema.default({}),

    health_port: port,
    template_port: port,
    prometheus_port: port,
    debug_handler_port: port,
    pulse_sink_reap_grace_sec: int,
    cpu_cost: cpuCostConfigSchema.default({}),

    // our additions
    /** Root of the per-egress temp dirs (default `<os tmpdir>/egress`). */
    tmp_dir: str,
    /** Browser executable (default: `chromium`/`chromium-browser`/`google-chrome` found on PATH). */
    chrome_path: str,
    /**
     * Handlers kept forked with a browser launched and idle, for page egresses to start without
     * launching one (unset: 1 on machines with ≥ 4 cores and ≥ 8 GB, else 0; see browser-pool.ts).
     */
    browser_pool_size: z.number().int().min(0).max(16).optional(),
    /** Ingest for `twitch://` URLs, with `{stream_key}` (default: the cached ingest list, else Twitch's auto-routing ingest). */
    twitch_ingest_template: str,
    /** Cached copy of Twitch's ingest list (`egress serve` refreshes it when older than a day). */
    twitch_ingests_file: str,
  })
  .strict();

export type RawServiceConfig = z.infer<typeof serviceConfigSchema>;
