import { EgressStatus, type EgressInfo } from 'livekit-server-sdk';
import { CLK_TCK, listProcs, processTree } from '../main/service/proc.js';
import type { PublisherHandle as Publisher } from '../test/support/publisher.js';
import { sleep, startPublishers, waitStatus, type RoomEnv } from '../test/room/common.js';

/**
 * CPU of one egress on the real path (livekit-server → Redis → worker): every process of its handler
 * tree — what the worker's admission monitor measures for it — sampled every 500 ms from ACTIVE for
 * `seconds`, then the egress is stopped and must COMPLETE. Shared by bench/sdk-sources and
 * bench/admission-costs.
 */

export interface Figures {
  type: string;
  recordedS: number;
  cpuS: number;
  perMinute: number;
  peakRssMb: number;
  /** CPU-s per recorded minute of the handler (rtc-node, decoders, transport) and of gst-launch. */
  handlerPerMinute: number;
  gstPerMinute: number;
}

/** Starts the egress under test in `room`, where `pubs` publish. */
export type Starter = (env: RoomEnv, room: string, pubs: Publisher[]) => Promise<EgressInfo>;

export async function measure(env: RoomEnv, type: string, start: Starter, seconds: number, publishers = 2): Promise<Figures> {
  const room = `bench-${type}`;
  // Publishers (two 640x360 VP8 + Opus, each in its own process) are not counted.
  const pubs = await startPublishers(env, room, publishers, { video: { codec: 'vp8' } });
  try {
    const info = await start(env, room, pubs);
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_ACTIVE, 60_000);
    const pid = env.worker.handlers().get(info.egressId);
    if (!pid) throw new Error('no handler process');
    const maxCpu = new Map<number, number>();
    let peakRss = 0;
    const sample = (): void => {
      const tree = processTree(pid, listProcs());
      peakRss = Math.max(peakRss, tree.reduce((s, p) => s + p.rssBytes, 0));
      for (const p of tree) maxCpu.set(p.pid, Math.max(maxCpu.get(p.pid) ?? 0, p.cpuTicks));
    };
    sample();
    const base = new Map(maxCpu);
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(500);
      sample();
    }
    const recordedS = (Date.now() - t0) / 1000;
    let ticks = 0;
    let handlerTicks = 0;
    for (const [p, t] of maxCpu) {
      ticks += t - (base.get(p) ?? 0);
      if (p === pid) handlerTicks += t - (base.get(p) ?? 0);
    }
    await env.egress.stopEgress(info.egressId);
    await waitStatus(env, info.egressId, EgressStatus.EGRESS_COMPLETE, 60_000);
    const cpuS = ticks / CLK_TCK;
    const perMin = (t: number): number => (t / CLK_TCK / recordedS) * 60;
    return { type, recordedS, cpuS, perMinute: (cpuS / recordedS) * 60, peakRssMb: peakRss / 1e6, handlerPerMinute: perMin(handlerTicks), gstPerMinute: perMin(ticks - handlerTicks) };
  } finally {
    await Promise.all(pubs.map((p) => p.stop()));
  }
}

