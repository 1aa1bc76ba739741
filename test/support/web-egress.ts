import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EncodedFileOutput, EgressInfo, FileOutput, Output, StartEgressRequest, WebEgressRequest, WebSource } from '@livekit/protocol';
import type { PartialMessage } from '@bufbuild/protobuf';
import { parseConfig } from '../../main/config/index.js';
import type { StartEgressEnvelope } from '../../main/request/index.js';
import { StaticServer } from '../../main/capture/static-server.js';
import type { WebEgressController } from '../../main/egress/web-egress.js';
import { createWebEgress, type CaptureHostFactory } from '../../main/egress/create-web-egress.js';
import { newEgressId } from '../../main/egress/ids.js';
import { EgressStatus } from '@livekit/protocol';

/** Test helpers that run real web egresses (real Chromium, real GStreamer) and clean up after. */

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const TEMPLATES_DIR = join(REPO_ROOT, 'templates');
export const FIXTURE_PAGES_DIR = join(REPO_ROOT, 'test/fixtures/pages');

export async function withServer<T>(root: string, fn: (baseUrl: string) => Promise<T>): Promise<T> {
  const server = new StaticServer(root);
  const base = await server.listen();
  try {
    return await fn(base);
  } finally {
    await server.close();
  }
}

export async function tempDir(prefix = 'egress-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface RunOptions {
  readonly request: PartialMessage<WebEgressRequest>;
  /** Stop this long after the recording started (ms); omit to let the page end it. */
  readonly stopAfterMs?: number;
  /** Stop this long after run() began, whatever the status (for ABORTED cases). */
  readonly stopAtMs?: number;
  readonly tmpDir: string;
  /** Called once ACTIVE, with the controller (fault injection). */
  readonly onActive?: (c: WebEgressController) => void;
  /** Hard limit for the whole run. */
  readonly timeoutMs?: number;
  /** Send the same request as a v2 StartEgressRequest with a web source. */
  readonly v2?: boolean;
  /** Do not add the default file output when the request has none. */
  readonly noDefaultFile?: boolean;
  /** v2 only: these outputs instead of the request's file (no default file is added). */
  readonly outputs?: Output[];
  /** The capture host (default: a ChromiumHost launched for the egress). */
  readonly hostFactory?: CaptureHostFactory;
  /** Extra service config (YAML lines), e.g. `video_encode_path: browser`. */
  readonly config?: string;
}

/** The v2 (unified) form of a v1 web request: web source, one file output, same encoding. */
function toV2(r: WebEgressRequest, outputs?: Output[]): StartEgressRequest {
  const file = r.fileOutputs[0];
  return new StartEgressRequest({
    source: { case: 'web', value: new WebSource({ url: r.url, audioOnly: r.audioOnly, videoOnly: r.videoOnly, awaitStartSignal: r.awaitStartSignal }) },
    encoding: r.options.case === 'advanced' ? { case: 'advanced', value: r.options.value } : r.options.case === 'preset' ? { case: 'preset', value: r.options.value } : { case: undefined },
    outputs: outputs ?? (file ? [new Output({ config: { case: 'file', value: new FileOutput({ fileType: file.fileType, filepath: file.filepath }) } })] : []),
  });
}

export interface RunResult {
  readonly info: EgressInfo;
  readonly updates: EgressInfo[];
  readonly controller: WebEgressController;
}

/** Validates the request like the service does, then runs it to its end. */
export async function runWebEgress(opts: RunOptions): Promise<RunResult> {
  const config = parseConfig(`tmp_dir: ${opts.tmpDir}\n${opts.config ?? ''}\n`);
  const request = new WebEgressRequest(opts.request);
  if (request.fileOutputs.length === 0 && !opts.noDefaultFile && !opts.outputs) request.fileOutputs.push(new EncodedFileOutput({ filepath: join(opts.tmpDir, 'out') + '/' }));
  const envelope: StartEgressEnvelope = { egressId: newEgressId(), request: opts.v2 || opts.outputs ? { case: 'egress', value: toV2(request, opts.outputs) } : { case: 'web', value: request } };
  const { controller } = createWebEgress(envelope, config, { localBaseDir: opts.tmpDir, ...(opts.hostFactory ? { hostFactory: opts.hostFactory } : {}) });
  const updates: EgressInfo[] = [];
  let timer: NodeJS.Timeout | undefined;
  controller.on('update', (i) => {
    updates.push(i);
    if (i.status === EgressStatus.EGRESS_ACTIVE) {
      opts.onActive?.(controller);
      if (opts.stopAfterMs !== undefined) {
        // ACTIVE carries the recording start in the file, segments and images results (an RTMP URL's
        // started_at is when it was added); without any of them, ACTIVE itself (never before the start)
        const startedNs = [i.fileResults[0], i.segmentResults[0], i.imageResults[0]].find((r) => r && r.startedAt > 0n)?.startedAt ?? 0n;
        const startedMs = Number(startedNs) / 1e6 || Date.now();
        timer = setTimeout(() => controller.stop(), Math.max(0, startedMs + opts.stopAfterMs - Date.now()));
      }
    }
  });
  const stopAt = opts.stopAtMs !== undefined ? setTimeout(() => controller.stop(), opts.stopAtMs) : undefined;
  const hard = setTimeout(() => controller.stop(), opts.timeoutMs ?? 120_000);
  try {
    const final = await controller.run();
    return { info: final, updates, controller };
  } finally {
    clearTimeout(timer);
    clearTimeout(stopAt);
    clearTimeout(hard);
  }
}

/** Runs the `egress` CLI; resolves with the exit code, the last stdout line parsed, and stderr. */
export function runCli(
  args: string[],
  cwd: string,
  opts: { onStderr?: (text: string, child: ChildProcess) => void } = {},
): Promise<{ code: number | null; last: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(REPO_ROOT, 'bin/egress.js'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      opts.onStderr?.(d.toString(), p);
    });
    p.on('error', reject);
    p.on('exit', (code) => {
      const lines = out.trim().split('\n');
      let last: Record<string, unknown> = {};
      try {
        last = JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>;
      } catch {
        // leave empty: the assertion on it will fail with the output in the message
      }
      resolve({ code, last, stderr: err });
    });
  });
}

/** Process ids still alive among the given ones. */
export function alive(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}
