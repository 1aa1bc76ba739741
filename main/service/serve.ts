/**
 * `egress serve [--config FILE] [--config-body YAML]`: runs the worker until a signal ends it, as
 * the original's does: SIGTERM/SIGQUIT drain (stop taking requests, let running egresses finish,
 * exit); SIGINT also ends every running egress (FAILED 403 `server is shutting down`). A second
 * SIGINT while shutting down exits at once.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { toEgressError } from '../contracts/errors.js';
import { logger, setLogLevel, type LogLevel } from '../log.js';
import { EgressService, type EgressServiceOptions } from './service.js';

const log = logger('serve');

export const SERVE_USAGE = 'usage: egress serve [--config FILE] [--config-body YAML]';

const LEVELS: Record<string, LogLevel> = { debug: 'debug', info: 'info', warn: 'warn', error: 'error' };

export async function serve(argv: string[], opts: EgressServiceOptions = {}): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'config-body': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE + '\n');
    return 0;
  }
  let service: EgressService;
  try {
    const config = loadConfig({ configFile: values.config, configBody: values['config-body'], requireConfig: true });
    const level = LEVELS[config.logging.level];
    if (level) setLogLevel(level);
    service = new EgressService(config, opts);
    await service.start();
  } catch (err) {
    log.error(`could not start: ${toEgressError(err).message}`);
    return 1;
  }
  let interrupts = 0;
  const onDrain = (): void => service.shutdown(false);
  const onInterrupt = (): void => {
    interrupts++;
    if (interrupts > 1) {
      log.warn('second SIGINT: exiting now');
      process.exit(130);
    }
    service.shutdown(true);
  };
  process.on('SIGTERM', onDrain);
  process.on('SIGQUIT', onDrain);
  process.on('SIGINT', onInterrupt);
  try {
    await service.done;
  } finally {
    process.off('SIGTERM', onDrain);
    process.off('SIGQUIT', onDrain);
    process.off('SIGINT', onInterrupt);
  }
  return 0;
}
