import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { EgressError } from '../contracts/errors.js';
import { logger } from '../log.js';
import { BoothService } from './booth-service.js';
import { boothConfigDir, defaultRecordingsDir } from './config-dir.js';
import { ConsoleServer, isLoopback } from './console-server.js';
import { loadOrCreateToken } from './console-token.js';

/** `egress console`: the booth service with the console transport, until SIGINT/SIGTERM. */

const log = logger('console');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export async function runConsole(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '7990' },
      bind: { type: 'string', default: '127.0.0.1' },
      config: { type: 'string' },
      'config-dir': { type: 'string' },
      'recordings-dir': { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `invalid --port ${values.port}`);
  const configDir = resolve(values['config-dir'] ?? boothConfigDir());
  const recordingsDir = resolve(values['recordings-dir'] ?? defaultRecordingsDir());
  const config = loadConfig({ configFile: values.config, requireConfig: false });
  const service = new BoothService({ config, configDir, recordingsDir, templatesDir: join(ROOT, 'templates') });
  await service.init();
  const { token, created, path: tokenPath } = await loadOrCreateToken(configDir);
  const server = new ConsoleServer({ service, token, uiDir: join(ROOT, 'dist/renderer'), port, bind: values.bind });
  const bound = await server.listen();
  const host = values.bind.includes(':') ? `[${values.bind}]` : values.bind === '0.0.0.0' ? '127.0.0.1' : values.bind;
  const base = `http://${host}:${bound}/`;
  // The token goes to the terminal of whoever started the console, never to the log.
  if (created) process.stdout.write(`egress console: open ${base}?token=${token}\n  (token made now and kept in ${tokenPath})\n`);
  else process.stdout.write(`egress console: open ${base}?token=<token from ${tokenPath}>\n`);
  process.stdout.write(`egress console: listening on ${values.bind}:${bound}; recordings go to ${recordingsDir}\n`);
  if (!isLoopback(values.bind)) log.warn(`the console listens on ${values.bind}, not loopback: anyone who can reach it and has the token can record`);
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  log.info('console stopping');
  await server.close();
  await service.close();
  return 0;
}
