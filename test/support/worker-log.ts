import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressStatus, type EgressClient, type EgressInfo } from 'livekit-server-sdk';
import { infoOf } from '../service/common.js';
import { waitFor, type WorkerProc } from '../service/worker-harness.js';

/**
 * A failed worker case keeps the worker's log (it goes with the test's temp dir otherwise): written
 * next to the temp dirs, with its status lines printed. Rethrows `err`.
 */
export async function keepWorkerLog(w: WorkerProc, name: string, err: unknown): Promise<never> {
  const path = join(tmpdir(), `egress-${name}-worker-${Date.now()}.log`);
  await writeFile(path, w.logs());
  const lines = w.logs().split('\n').filter((l) => /loading|capture started|recording started|status |stopping|limit|failed|frozen|passthrough/i.test(l));
  process.stdout.write(`# worker log kept at ${path}\n${lines.slice(-40).map((l) => `# ${l}`).join('\n')}\n`);
  throw err;
}

/**
 * Waits for the egress to end — any end — and checks it is `status`: an egress that ended otherwise
 * fails at once, saying how, instead of being waited for until the timeout; either way the worker's
 * log is kept.
 */
export async function waitEnd(api: EgressClient, w: WorkerProc, name: string, id: string, status: EgressStatus, timeoutMs: number): Promise<EgressInfo> {
  const done = await waitFor(
    `${id} ended`,
    async () => {
      const i = await infoOf(api, id);
      return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
    },
    timeoutMs,
    250,
  ).catch((err: unknown) => keepWorkerLog(w, name, err));
  if (done.status !== status) await keepWorkerLog(w, name, new Error(`ended ${EgressStatus[done.status]}: ${done.error}`));
  return done;
}
