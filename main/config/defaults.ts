import os from 'node:os';
import path from 'node:path';

/**
 * Defaults of the service config, named after the original's constants. Durations are
 * milliseconds. A zero/unset value in YAML means "use the default" for every
 * key below, as in the original's InitDefaults.
 */

export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_TEMPLATE_PORT = 7980;
/** `http://localhost:<template_port>/` */
export function defaultTemplateBase(templatePort: number): string {
  return `http://localhost:${templatePort}/`;
}

export const DEFAULT_MAX_UPLOAD_QUEUE_MIN = 60;
export const DEFAULT_IO_CREATE_TIMEOUT_MS = 15_000;
export const DEFAULT_IO_UPDATE_TIMEOUT_MS = 30_000;
export const DEFAULT_IO_WORKERS = 5;
export const DEFAULT_PULSE_SINK_REAP_GRACE_SEC = 30;

// latency
export const DEFAULT_JITTER_BUFFER_LATENCY_MS = 2_000;
export const DEFAULT_AUDIO_MIXER_LATENCY_MS = 2_750;
export const DEFAULT_PIPELINE_LATENCY_MS = 3_000;
export const DEFAULT_RTP_MAX_ALLOWED_TS_DIFF_MS = 5_000;
export const DEFAULT_RTP_MAX_DRIFT_ADJUSTMENT_MS = 5;
export const DEFAULT_OLD_PACKET_THRESHOLD_MS = 2_200;

export const DEFAULT_AUDIO_TEMPO_ADJUSTMENT_RATE = 0.05;
export const MAX_AUDIO_TEMPO_ADJUSTMENT_RATE = 0.2;

// cpu_cost: the original's code defaults unless said otherwise. The costs of types with video are
// their 720p30 figures: main/request/cost-model.ts scales them by the encoding a request asks for.
export const DEFAULT_MAX_CPU_UTILIZATION = 0.8;
/*
 * Every cost below is ours, measured with `npm run bench:costs` (the egress's whole process tree:
 * handler, browser, gst-launch; real livekit-server, two 640x360 VP8 + Opus publishers) on a quiet
 * 2-core machine, 30 s per case, and rounded up by about 10 %. Measured, in cores: web 720p30 1.81,
 * room composite 720p30 1.43, audio-only web 0.74, participant 720p30 0.45, track composite 0.43,
 * v2 media 0.47, audio-only room composite without a page 0.14, Opus track → OGG 0.13, VP8 track →
 * WebM 0.16. The original charges 4 (room composite, web), 1 (audio-only), 2 (participant),
 * 1 (track composite) and 0.5 (track), which no 2-core machine could accept.
 */
export const DEFAULT_ROOM_COMPOSITE_CPU_COST = 1.6;
/** Audio-only template page (a layout or custom page): the browser for the page and its tab audio, as audio-only web. */
export const DEFAULT_AUDIO_ROOM_COMPOSITE_CPU_COST = 0.8;
/** Audio-only room composite without a page (rtc-node, the room's mix). */
export const DEFAULT_SDK_AUDIO_ROOM_COMPOSITE_CPU_COST = 0.2;
export const DEFAULT_WEB_CPU_COST = 2;
export const DEFAULT_AUDIO_WEB_CPU_COST = 0.8;
export const DEFAULT_PARTICIPANT_CPU_COST = 0.5;
export const DEFAULT_TRACK_COMPOSITE_CPU_COST = 0.5;
export const DEFAULT_TRACK_CPU_COST = 0.2;
export const DEFAULT_MAX_PULSE_CLIENTS = 60;
export const DEFAULT_CPU_KILL_GRACE_SEC = 30;
export const MEMORY_SOURCES = ['proc_rss', 'cgroup'] as const;
export type MemorySource = (typeof MEMORY_SOURCES)[number];
export const DEFAULT_MEMORY_SOURCE: MemorySource = 'proc_rss';

// our additions
/** `<os tmpdir>/egress`; each egress gets `<tmp_dir>/<egress_id>`. */
export function defaultTmpDir(): string {
  return path.join(os.tmpdir(), 'egress');
}
/** Browser executables looked up on PATH, in this order, when `chrome_path` is not set. */
export const CHROME_CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'] as const;
