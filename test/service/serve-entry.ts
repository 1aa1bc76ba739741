/**
 * Test entry for the worker: `node dist/test/service/serve-entry.js --config-body …` runs the real
 * `serve()` code path (same as `egress serve` once main/cli.ts dispatches to it).
 */
import { serve } from '../../main/service/serve.js';

// A test may swap the handler for a stand-in (a process that never becomes ready, say).
const handlerEntry = process.env['EGRESS_TEST_HANDLER_ENTRY'];
const handlerReadyTimeoutMs = Number(process.env['EGRESS_TEST_HANDLER_READY_MS'] ?? 0);

void serve(process.argv.slice(2), { ...(handlerEntry ? { handlerEntry } : {}), ...(handlerReadyTimeoutMs > 0 ? { handlerReadyTimeoutMs } : {}) }).then((code) => {
  process.exitCode = code;
  // Whatever handle a library may still hold, the command ends once serve() returned.
  setTimeout(() => process.exit(code), 2000).unref();
});
