import { Counter, Histogram, type Registry } from 'prom-client';
import type { OutputType } from './types.js';

/** Upload metrics, registered on the registry passed in (once per registry). */
export interface UploadMetrics {
  observeUpload(outputType: OutputType, status: UploadStatus, customEndpoint: boolean, elapsedMs: number): void;
  backupWrite(outputType: OutputType): void;
}

export type UploadStatus = 'success' | '4xx' | '5xx' | 'internal';
export const UPLOAD_STATUSES = ['success', '4xx', '5xx', 'internal'] as const satisfies readonly UploadStatus[];

/** One thing the upload metrics counted, as a handler forwards it to its worker (whose /metrics shows it). */
export type UploadObservation =
  | { readonly kind: 'upload'; readonly outputType: OutputType; readonly status: UploadStatus; readonly customEndpoint: boolean; readonly elapsedMs: number }
  | { readonly kind: 'backupWrite'; readonly outputType: OutputType };

const cache = new WeakMap<Registry, UploadMetrics>();
const observers = new WeakMap<Registry, (o: UploadObservation) => void>();

/**
 * Calls `observer` with every upload counted on `registry` (after it is counted there). A handler
 * process counts on its own registry and forwards each observation to the worker over IPC.
 */
export function observeUploadMetrics(registry: Registry, observer: (o: UploadObservation) => void): void {
  observers.set(registry, observer);
}

/** Counts a forwarded observation on `registry` (the worker's). */
export function recordUploadObservation(registry: Registry, o: UploadObservation): void {
  const m = uploadMetrics(registry);
  if (o.kind === 'upload') m.observeUpload(o.outputType, o.status, o.customEndpoint, o.elapsedMs);
  else m.backupWrite(o.outputType);
}

export function uploadMetrics(registry: Registry): UploadMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const uploads = get(
    'livekit_egress_pipeline_uploads',
    () =>
      new Counter({
        name: 'livekit_egress_pipeline_uploads',
        help: 'Number of uploads per pipeline with type and status labels',
        labelNames: ['type', 'status', 'custom_endpoint'] as const,
        registers: [registry],
      }),
  );
  const responseTime = get(
    'livekit_egress_pipline_upload_response_time_ms',
    () =>
      new Histogram({
        name: 'livekit_egress_pipline_upload_response_time_ms',
        help: 'A histogram of latencies for upload requests in milliseconds.',
        labelNames: ['type', 'status', 'custom_endpoint'] as const,
        buckets: [10, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 20000, 30000],
        registers: [registry],
      }),
  );
  const backupWrites = get(
    'livekit_egress_backup_storage_writes',
    () =>
      new Counter({
        name: 'livekit_egress_backup_storage_writes',
        help: 'number of writes to backup storage location by output type',
        labelNames: ['output_type'] as const,
        registers: [registry],
      }),
  );
  const m: UploadMetrics = {
    observeUpload(outputType, status, customEndpoint, elapsedMs) {
      const labels = { type: outputType, status, custom_endpoint: String(customEndpoint) };
      uploads.inc(labels);
      responseTime.observe(labels, elapsedMs);
      observers.get(registry)?.({ kind: 'upload', outputType, status, customEndpoint, elapsedMs });
    },
    backupWrite(outputType) {
      backupWrites.inc({ output_type: outputType });
      observers.get(registry)?.({ kind: 'backupWrite', outputType });
    },
  };
  cache.set(registry, m);
  return m;
}

export function statusOf(err: unknown): UploadStatus {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof code === 'number') {
    if (code >= 400 && code < 500) return '4xx';
    if (code >= 500) return '5xx';
  }
  return 'internal';
}
