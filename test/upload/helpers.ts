import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { StoragePlan } from '../../main/contracts/pipeline.js';
import type { OutputType, UploaderOptions } from '../../main/upload/types.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'upload-child.js');

/** Progress reports an upload gave (see upload-child.ts). */
export interface UploadProgressSeen {
  reports: number;
  lastSent: number;
  total: number;
  backwards: number;
  intermediate: number;
}

export interface ChildResult {
  results: ({ ok: true; location: string; size: number; storagePath: string; backup: boolean; ms: number; progress: UploadProgressSeen } | { ok: false; message: string; localPath?: string; code: string; isUploadError: boolean; ms: number })[];
  backupStorageUsed: boolean;
  leftOnDisk: string[];
  peakRss: number;
  stdout: string;
  stderr: string;
}

export async function runChild(input: {
  primary: StoragePlan;
  backup?: StoragePlan | null;
  options?: UploaderOptions;
  backupOptions?: UploaderOptions;
  uploads: { localPath: string; storageFilepath: string; outputType: OutputType }[];
}): Promise<ChildResult> {
  const child = spawn(process.execPath, [CHILD], {
    env: { ...process.env, UPLOAD_CHILD_INPUT: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`upload child exited ${code}: ${stderr.slice(-2000)}`);
  const line = stdout.trim().split('\n').pop() ?? '{}';
  return { ...(JSON.parse(line) as Omit<ChildResult, 'stdout' | 'stderr'>), stdout, stderr };
}

export async function sha256Stream(s: Readable | AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Uint8Array);
  return h.digest('hex');
}

export function sha256File(p: string): Promise<string> {
  return sha256Stream(createReadStream(p));
}

export async function sha256Url(url: string, init?: RequestInit): Promise<string> {
  const res = await fetch(url, init);
  if (!res.ok || !res.body) throw new Error(`GET ${url.split('?')[0]} → ${res.status}`);
  return sha256Stream(res.body as unknown as AsyncIterable<Uint8Array>);
}

export const MB = 1024 * 1024;
