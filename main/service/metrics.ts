/**
 * Prometheus metrics of the worker with the original's names: namespace `livekit`,
 * const labels node_id and cluster_id, plus Node's default process/runtime collectors.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { REQUEST_TYPES } from '../config/schema.js';

export type HandlerResult = 'completed' | 'aborted' | 'stopped_cpu' | 'killed_cpu' | 'killed_oom' | 'killed_shutdown' | 'process_error' | 'duplicate_identity' | 'failed' | 'limit_reached';

export interface MetricsSource {
  isIdle(): boolean;
  canAcceptWeb(): boolean;
  isDisabled(): boolean;
  isTerminating(): boolean;
  hostCpuLoad(): number;
  requestsByType(): Record<string, number>;
  procRssBytes(): number;
  cgroupMemoryBytes(): number | null;
  wouldRejectCgroup(): boolean;
  loadRatios(): { cpu: number; memory: number; pulse: number };
  /** The warm pool: handlers with an idle browser ready, and their memory (not counted by admission). */
  browserPool?(): { ready: number; rssBytes: number };
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly handlerResults: Counter<'type' | 'result'>;

  constructor(nodeId: string, clusterId: string, src: MetricsSource) {
    const r = this.registry;
    r.setDefaultLabels({ node_id: nodeId, cluster_id: clusterId });
    collectDefaultMetrics({ register: r });
    const gauge = (name: string, help: string, collect: (g: Gauge) => void, labelNames: string[] = []): Gauge =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          collect(this as Gauge);
        },
      });
    gauge('livekit_egress_available', '1 when this instance is idle', (g) => g.set(src.isIdle() ? 1 : 0));
    gauge('livekit_egress_can_accept_request', '1 when an empty web request would be accepted', (g) => g.set(src.canAcceptWeb() ? 1 : 0));
    gauge('livekit_egress_is_disabled', '1 when this instance does not take requests', (g) => g.set(src.isDisabled() ? 1 : 0));
    gauge('livekit_egress_is_terminating', '1 while shutting down', (g) => g.set(src.isTerminating() ? 1 : 0));
    gauge('livekit_node_cpu_load', 'host CPU load (0..1)', (g) => g.set({ node_type: 'EGRESS' }, src.hostCpuLoad()), ['node_type']);
    gauge(
      'livekit_egress_requests',
      'running egresses by request type',
      (g) => {
        const by = src.requestsByType();
        for (const t of REQUEST_TYPES) g.set({ type: t }, by[t] ?? 0);
      },
      ['type'],
    );
    gauge('livekit_egress_proc_rss_bytes', 'RSS of the egress handler process trees', (g) => g.set(src.procRssBytes()));
    gauge('livekit_egress_cgroup_memory_bytes', 'cgroup memory.current', (g) => g.set(src.cgroupMemoryBytes() ?? 0));
    gauge('livekit_egress_cgroup_read_success', '1 when the cgroup memory could be read', (g) => g.set(src.cgroupMemoryBytes() === null ? 0 : 1));
    gauge('livekit_egress_would_reject_cgroup', '1 when the cgroup memory would reject a request', (g) => g.set(src.wouldRejectCgroup() ? 1 : 0));
    gauge('livekit_egress_browser_pool_ready', 'pre-launched browsers idle and ready (browser_pool_size)', (g) => g.set(src.browserPool?.().ready ?? 0));
    gauge('livekit_egress_browser_pool_rss_bytes', 'RSS of the idle pre-launched browsers and their handlers', (g) => g.set(src.browserPool?.().rssBytes ?? 0));
    gauge('livekit_egress_pulse_sinks', 'PulseAudio sinks (none: capture does not use PulseAudio)', (g) => g.set(0));
    gauge(
      'livekit_load_ratio',
      'used / capacity by resource',
      (g) => {
        const l = src.loadRatios();
        g.set({ type: 'cpu' }, l.cpu);
        g.set({ type: 'memory' }, l.memory);
        g.set({ type: 'pulse' }, l.pulse);
      },
      ['type'],
    );
    this.handlerResults = new Counter({
      name: 'livekit_egress_handler_results_total',
      help: 'finished egress handlers by request type and result',
      labelNames: ['type', 'result'],
      registers: [r],
    });
  }
}
