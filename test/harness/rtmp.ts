import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, stopProc, waitForPort } from './storage.js';

/**
 * A real RTMP server for tests: nginx with Debian's libnginx-mod-rtmp on a free loopback port.
 * Application `live` accepts any stream key and records each publish to `<recordDir>/<key>.flv`
 * (read back with ffprobe); any other application rejects the publish.
 */

export const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

export function rtmpServerAvailable(): boolean {
  return existsSync(NGINX_RTMP_MODULE) && existsSync('/usr/sbin/nginx');
}

export interface RtmpServer {
  readonly port: number;
  /** `rtmp://127.0.0.1:<port>/live/` */
  readonly liveUrl: string;
  readonly recordDir: string;
  stop(): Promise<void>;
}

export interface RtmpServerOptions {
  /** nginx-rtmp `on_publish` callback URL: a non-2xx answer rejects that publish. */
  readonly onPublish?: string;
}

export async function startRtmpServer(opts: RtmpServerOptions = {}): Promise<RtmpServer> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nginx-rtmp-'));
  const recordDir = path.join(dir, 'rec');
  await mkdir(recordDir);
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `load_module ${NGINX_RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:${port};
    chunk_size 4096;
    application live { live on; record all; record_path ${recordDir}; record_unique off;${opts.onPublish ? ` on_publish ${opts.onPublish};` : ''} }
  }
}
`,
  );
  const proc = spawn('/usr/sbin/nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, 10_000, proc);
  return {
    port,
    liveUrl: `rtmp://127.0.0.1:${port}/live/`,
    recordDir,
    async stop() {
      await stopProc(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
