/**
 * Test entry for the worker: `node dist/test/service/serve-entry.js --config-body …` runs the real
 * `serve()` code path (same as `egress serve` once main/cli.ts dispatches to it).
 */
import { serve } from '../../main/service/serve.js';

void serve(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Whatever handle a library may still hold, the command ends once serve() returned.
  setTimeout(() => process.exit(code), 2000).unref();
});
