import log from 'electron-log/node';

/**
 * The project's logger: electron-log's Node flavour, which works the same in the Electron main
 * process, the CLI and tests. Console output goes to stderr so that stdout stays machine-readable
 * (the CLI prints EgressInfo JSON there). Never log secrets or stream keys: redact before logging.
 */
log.transports.file.level = false;
log.transports.console.level = 'info';
log.transports.console.format = '{text}';
log.transports.console.writeFn = ({ message }) => {
  const text = message.data.map((d: unknown) => (typeof d === 'string' ? d : safeStringify(d))).join(' ');
  process.stderr.write(`[${message.date.toISOString()}] [${message.level}]${message.scope ? ` (${message.scope})` : ''} ${text}\n`);
};

function safeStringify(v: unknown): string {
  if (v instanceof Error) return v.stack ?? v.message;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export type LogLevel = 'error' | 'warn' | 'info' | 'verbose' | 'debug' | 'silly';

export function setLogLevel(level: LogLevel | false): void {
  log.transports.console.level = level;
}

/** A logger whose lines carry a scope, e.g. `logger('gst')`. */
export function logger(scope: string): ReturnType<typeof log.scope> {
  return log.scope(scope);
}

export default log;
