/**
 * Checks of a file that came out of a fault (or an overload stop): the container's duration equals
 * the reported one, it decodes without errors, and nothing frozen was appended at its end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ffprobe, videoStream } from './media.js';

const run = promisify(execFile);

export interface FaultedFile {
  readonly containerS: number;
  readonly reportedS: number;
  /** Frozen runs (≥ 1 s of identical pictures) that reach the end of the file, [start, end] in file seconds. */
  readonly frozenTail: [number, number][];
  readonly decodeErrors: number;
}

/** Frozen-picture runs of at least `minS` (ffmpeg freezedetect), as [start, end] file seconds. */
export async function frozenRuns(path: string, minS = 0.5, fromS = 0): Promise<[number, number][]> {
  const { stderr } = await run('ffmpeg', ['-v', 'info', '-ss', String(fromS), '-i', path, '-vf', `freezedetect=n=0.001:d=${minS}`, '-an', '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
  const starts = [...stderr.matchAll(/freeze_start: ([\d.]+)/g)].map((m) => Number(m[1]) + fromS);
  const ends = [...stderr.matchAll(/freeze_end: ([\d.]+)/g)].map((m) => Number(m[1]) + fromS);
  return starts.map((s, i) => [s, ends[i] ?? Number.POSITIVE_INFINITY]);
}

/** Decode errors over the whole file (ffmpeg -v error lines). */
export async function decodeErrors(path: string): Promise<number> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
  return stderr.split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * Asserts the file of a faulted egress: reported duration = container ± 0.2 s, 0 decode errors, and
 * (when it has video of a moving page) no frozen picture at its end.
 */
export async function assertFaultedFile(path: string, reportedNs: bigint, what: string, opts: { movingVideo?: boolean; minS?: number } = {}): Promise<FaultedFile> {
  const p = await ffprobe(path);
  const containerS = Number(p.format.duration);
  const reportedS = Number(reportedNs) / 1e9;
  assert.ok(reportedS > (opts.minS ?? 0.5), `${what}: reported ${reportedS} s`);
  assert.ok(Math.abs(containerS - reportedS) <= 0.2, `${what}: container ${containerS.toFixed(2)} s vs reported ${reportedS.toFixed(2)} s`);
  const errors = await decodeErrors(path);
  assert.equal(errors, 0, `${what}: decode errors`);
  let frozenTail: [number, number][] = [];
  if (opts.movingVideo !== false && videoStream(p)) {
    // A frame repeated after the fault runs to the end of the file. A starved page may also freeze
    // for a moment anywhere (a loaded machine), so only a run of ≥ 1 s reaching the end counts.
    const from = Math.max(0, containerS - 4);
    const end = containerS - 0.15;
    frozenTail = (await frozenRuns(path, 1, from)).filter(([, e]) => e >= end);
    assert.deepEqual(frozenTail, [], `${what}: frozen picture at the end of the file (${containerS.toFixed(2)} s)`);
  }
  return { containerS, reportedS, frozenTail, decodeErrors: errors };
}
