import type { Registry } from 'prom-client';
import type { ServiceConfig } from '../config/index.js';
import type { PipelinePlan } from '../contracts/pipeline.js';
import { buildPipelinePlan, type StartEgressEnvelope } from '../request/index.js';
import type { CaptureHost, CaptureHostOptions } from '../capture/capture-host.js';
import { ChromiumHost } from '../capture/chromium-host.js';
import { assertRunnable } from './capabilities.js';
import { initialEgressInfo } from './info.js';
import { createEgressUploads } from './uploads.js';
import { WebEgressController } from './web-egress.js';
import { chooseVideoPath } from './video-path.js';
import { logger } from '../log.js';

const log = logger('egress');

export type CaptureHostFactory = (opts: CaptureHostOptions) => CaptureHost;

export interface CreateWebEgressOptions {
  /** Default: Debian's Chromium over CDP. The Electron app passes its offscreen-window host. */
  readonly hostFactory?: CaptureHostFactory;
  /** Base for relative local-storage paths (the original uses `/`). */
  readonly localBaseDir?: string;
  readonly registry?: Registry;
  readonly now?: Date;
}

/** config chrome_flags as the host takes them (`flag: ""` = `--flag` alone). */
export function chromeFlagsOf(config: ServiceConfig): Record<string, string> {
  return Object.fromEntries(Object.entries(config.chrome_flags).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/**
 * Validates a page egress request (web page, room composite or v2 template) and assembles its
 * controller: plan, initial STARTING info, capture host and uploads. Throws the original's
 * validation errors, or a clear refusal for what this build cannot run, before anything is spawned.
 */
export function createWebEgress(envelope: StartEgressEnvelope, config: ServiceConfig, opts: CreateWebEgressOptions = {}): { plan: PipelinePlan; controller: WebEgressController } {
  const now = opts.now ?? new Date();
  const plan = buildPipelinePlan(envelope, config, now);
  assertRunnable(plan);
  const hostOptions: CaptureHostOptions = {
    width: plan.encoding.width,
    height: plan.encoding.height,
    framerate: plan.encoding.framerate,
    workDir: plan.tmpDir,
    egressId: plan.egressId,
    insecure: config.insecure,
    sandbox: config.enable_chrome_sandbox,
    extraFlags: chromeFlagsOf(config),
    ...(config.chrome_path ? { chromePath: config.chrome_path } : {}),
  };
  const host = (opts.hostFactory ?? ((o) => new ChromiumHost(o)))(hostOptions);
  const videoPath = chooseVideoPath(plan, config.video_encode_path, host.canEncodeInPage);
  if (plan.videoEnabled) log.info(`video encoder: ${videoPath.path === 'browser' ? 'in the page (WebCodecs)' : 'x264'} — ${videoPath.reason} [egress:${plan.egressId}]`);
  const uploadOptions = {
    ...(opts.localBaseDir ? { localBaseDir: opts.localBaseDir } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
  };
  const uploads = createEgressUploads(plan, config, uploadOptions);
  // Each live output uploads to its own resolved storage (per output → per request → config).
  const outputUploadOptions = opts.localBaseDir ? { localBaseDir: opts.localBaseDir } : {};
  const segmentUploads = plan.segments ? createEgressUploads(plan, config, outputUploadOptions, plan.segments.storage) : undefined;
  const imageUploads = new Map((plan.images ?? []).map((img) => [img.id, createEgressUploads(plan, config, outputUploadOptions, img.storage)] as const));
  const controller = new WebEgressController(plan, initialEgressInfo(plan, envelope, now), {
    host,
    encoderThreads: config.video_encoder_threads,
    videoPath: videoPath.path,
    uploads,
    ...(segmentUploads ? { segmentUploads } : {}),
    imageUploads,
    maxUploadQueueMin: config.max_upload_queue,
    credentials: { apiKey: config.api_key, apiSecret: config.api_secret },
  });
  return { plan, controller };
}
