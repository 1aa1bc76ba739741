import { readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceConfig } from '../config/index.js';
import type { PipelinePlan } from '../contracts/pipeline.js';

/**
 * Session limits: the smallest non-zero `*_output_max_duration` that applies to the
 * plan's outputs, in ms (0 = no limit). Stream covers websocket too.
 */
export function sessionLimitMs(plan: PipelinePlan, config: ServiceConfig): number {
  const l = config.session_limits;
  const candidates: number[] = [];
  if (plan.file) candidates.push(l.file_output_max_duration);
  if (plan.stream) candidates.push(l.stream_output_max_duration);
  if (plan.segments) candidates.push(l.segment_output_max_duration);
  if (plan.images && plan.images.length > 0) candidates.push(l.image_output_max_duration);
  const set = candidates.filter((c) => c > 0);
  return set.length === 0 ? 0 : Math.min(...set);
}

/** How often the temp-dir size is checked against file_output_max_size (the original's 15 s). */
export const OUTPUT_SIZE_CHECK_MS = 15_000;

/** Bytes of regular files under `dir` (recursive; symlinks not followed; missing → 0). */
export async function dirSize(dir: string, depth = 0): Promise<number> {
  if (depth > 16) return 0;
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p, depth + 1);
    else if (e.isFile()) {
      try {
        total += (await lstat(p)).size;
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return total;
}
