// A node:test reporter that prints nothing until the run ends, then one compact block per failed
// test: its name, file, error text and the last lines its file logged before it failed. It runs
// beside the TAP reporter (see package.json) because a CI log is often read from its tail only,
// and TAP puts a failure's error hundreds of lines above the end, away from the run's summary.
import type { TestEvent } from 'node:test/reporters';

const LOG_LINES_PER_FAILURE = 12;
const MAX_ERROR_CHARS = 700;
const RECENT_LINES_KEPT = 40;

interface Failure {
  name: string;
  file: string;
  error: string;
  recentLog: string[];
}

/** The error's own message, with the causes node:test wraps around it unwrapped. */
function errorText(error: unknown): string {
  let current: unknown = error;
  // node:test wraps a test's throw in ERR_TEST_FAILURE with the original as `cause`.
  for (let depth = 0; depth < 3 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
  }
  let text = current instanceof Error ? `${current.name}: ${current.message}` : String(current);
  if (text.length > MAX_ERROR_CHARS) text = `${text.slice(0, MAX_ERROR_CHARS)} …`;
  // The innermost frame in a test file says which check threw, when the message alone does not.
  const frame = current instanceof Error ? current.stack?.split('\n').find((l) => /\/test\/.*\.js:\d+/.test(l)) : undefined;
  return frame === undefined ? text : `${text}\n${frame.trim().replace(/file:\/\/\S*\/dist\//, 'dist/')}`;
}

function isSubtestRollup(error: unknown): boolean {
  // A suite fails with "N subtests failed" when its tests did; those tests are listed themselves.
  return error instanceof Error && 'failureType' in error && error.failureType === 'subtestsFailed';
}

export default async function* failureSummary(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const recentByFile = new Map<string, string[]>();
  const failures: Failure[] = [];
  let passed = 0;

  const remember = (file: string | undefined, text: string): void => {
    const key = file ?? '';
    const lines = recentByFile.get(key) ?? [];
    for (const line of text.split('\n')) if (line.trim() !== '') lines.push(line);
    lines.splice(0, Math.max(0, lines.length - RECENT_LINES_KEPT));
    recentByFile.set(key, lines);
  };

  for await (const event of source) {
    switch (event.type) {
      case 'test:stdout':
      case 'test:stderr':
        remember(event.data.file, event.data.message);
        break;
      case 'test:pass':
        if (event.data.details.type !== 'suite') passed++;
        break;
      case 'test:fail': {
        const error = event.data.details.error;
        if (isSubtestRollup(error)) break;
        const file = event.data.file ?? '';
        const line = 'line' in event.data && event.data.line !== undefined ? `:${event.data.line}` : '';
        failures.push({
          name: event.data.name,
          file: `${file.replace(/^.*\/dist\//, 'dist/')}${line}`,
          error: errorText(error),
          recentLog: (recentByFile.get(file) ?? []).slice(-LOG_LINES_PER_FAILURE),
        });
        break;
      }
      default:
        break;
    }
  }

  if (failures.length === 0) {
    yield `\nfailure summary: none (${passed} tests passed)\n`;
    return;
  }
  let out = `\nfailure summary: ${failures.length} failed, ${passed} passed\n`;
  failures.forEach((failure, index) => {
    out += `\n[${index + 1}] ${failure.name}\n    at ${failure.file}\n    ${failure.error.replace(/\n/g, '\n    ')}\n`;
    if (failure.recentLog.length > 0) {
      out += `    last lines logged before it:\n${failure.recentLog.map((l) => `      ${l.slice(0, 240)}`).join('\n')}\n`;
    }
  });
  yield out;
}
