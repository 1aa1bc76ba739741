import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultTemplateBase } from '../config/defaults.js';
import type { ServiceConfig } from '../config/index.js';
import { logger } from '../log.js';
import { StaticServer } from './static-server.js';

/**
 * The built-in template server: serves the bundled room templates (grid, speaker,
 * single-speaker and their -light variants, one page that reads `layout`) on loopback at
 * `template_port`, which is what the default `template_base` points at.
 */

const log = logger('templates');

/** The bundled room template (built by scripts/build-templates.mjs into dist/templates/room). */
export const ROOM_TEMPLATE_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../templates/room');

export interface TemplateServer {
  /** The base URL room composites use by default (config template_base, or ours if it moved). */
  readonly baseUrl: string;
  close(): Promise<void>;
}

function isAddrInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/**
 * Starts the template server on `template_port`. When the port is taken: a worker assumes another
 * instance on this machine serves the same templates there (several workers may share a box);
 * with `movable` (the standalone recorder) it takes a free port instead and, if template_base was
 * the default, returns the moved base URL.
 */
export async function startTemplateServer(config: ServiceConfig, opts: { movable?: boolean } = {}): Promise<TemplateServer> {
  if (!existsSync(join(ROOM_TEMPLATE_DIR, 'index.html'))) {
    log.warn(`room templates not built (${ROOM_TEMPLATE_DIR}); run npm run build`);
  }
  const server = new StaticServer(ROOM_TEMPLATE_DIR);
  const usesDefaultBase = config.template_base === defaultTemplateBase(config.template_port);
  try {
    await server.listen(config.template_port);
    log.info(`room templates served on 127.0.0.1:${config.template_port}`);
    return { baseUrl: config.template_base, close: () => server.close() };
  } catch (err) {
    if (!isAddrInUse(err)) throw err;
    if (!opts.movable) {
      log.warn(`template_port ${config.template_port} is in use: assuming another egress on this machine serves the templates there`);
      return { baseUrl: config.template_base, close: async () => undefined };
    }
    const base = await server.listen(0);
    log.info(`template_port ${config.template_port} is in use: room templates served at ${base}`);
    return { baseUrl: usesDefaultBase ? base : config.template_base, close: () => server.close() };
  }
}
