/**
 * The reconnect and liveness rules of the stream output, with the rules' times
 * shortened and a stand-in publisher process (a node script that behaves like a gst-launch
 * publisher: prints its PLAYING line, writes bytes, stalls, or exits with an rtmp2sink error). Its
 * progress is what it wrote (to /dev/null, /proc/<pid>/io wchar) instead of the TCP bytes a server
 * acknowledged; real servers and the real probe are in test/live (stream-failures).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import { readFileSync } from 'node:fs';
import { StreamOutput, tcpReadProgress, type ProgressProbe, type PublisherCommand, type StreamRobustness } from '../../main/output/stream-output.js';
import { validateStreamUrl } from '../../main/request/urls.js';

const RULES: StreamRobustness = { reconnectWindowMs: 3000, livenessPollMs: 200, livenessIdleMs: 2000, progressBytes: 4096, retryDelayMs: 200, retryUpdateIntervalMs: 60_000 };

const written: ProgressProbe = async (pids) => {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      out.set(pid, Number(/^wchar:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0));
    } catch {
      // gone
    }
  }
  return out;
};

type Behaviour = 'refuse' | 'stall' | 'drop' | 'drop-late' | 'healthy';

/** Writes 32 KiB every 100 ms for `writeMs` (forever when < 0), then stalls or exits with an error. */
function fake(behaviour: Behaviour): { command: string; args: string[] } {
  const script = `
const fs = require('node:fs');
const b = ${JSON.stringify(behaviour)};
const err = 'ERROR: from element /GstPipeline:pipeline0/GstRtmp2Sink:rtmp2sink0: Connection error: connection closed remotely\\n';
if (b === 'refuse') { process.stderr.write("ERROR: from element /GstPipeline:pipeline0/GstRtmp2Sink:rtmp2sink0: Failed to connect: 'publish' cmd failed\\n"); process.exit(1); }
process.stdin.resume();
process.stdout.write('Setting pipeline to PLAYING ...\\n');
const fd = fs.openSync('/dev/null', 'w');
const chunk = Buffer.alloc(32768);
const writeMs = b === 'stall' ? 1000 : b === 'drop' ? 1000 : b === 'drop-late' ? 4500 : -1;
const t0 = Date.now();
const t = setInterval(() => {
  if (writeMs >= 0 && Date.now() - t0 > writeMs) {
    clearInterval(t);
    if (b !== 'stall') { process.stderr.write(err); process.exit(1); }
    return;
  }
  fs.writeSync(fd, chunk);
}, 100);
`;
  return { command: process.execPath, args: ['-e', script] };
}

function run(behaviours: Behaviour[], rules: StreamRobustness = RULES): { out: StreamOutput; results: StreamInfo[]; attempts: () => number; changes: () => number } {
  let n = 0;
  const publisher: PublisherCommand = () => fake(behaviours[Math.min(n++, behaviours.length - 1)] ?? 'healthy');
  const results: StreamInfo[] = [];
  const out = new StreamOutput({ protocol: 'rtmp', urls: [validateStreamUrl('rtmp://127.0.0.1:1/live/robustkey', 'rtmp')] }, 'EG_unit', results, rules, publisher, written);
  let changes = 0;
  out.on('changed', () => changes++);
  out.start();
  return { out, results, attempts: () => n, changes: () => changes };
}

async function until(what: string, fn: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe('stream output reconnect and liveness rules', () => {
  it('a first attempt that fails before any progress (bad URL or key) is FAILED at once, without retries', async () => {
    const { out, results, attempts } = run(['refuse', 'healthy']);
    await until('FAILED', () => results[0]?.status === StreamInfo_Status.FAILED, 5000);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(attempts(), 1);
    assert.equal(results[0]?.retries, 0);
    assert.equal(results[0]?.lastRetryAt, 0n);
    assert.match(results[0]?.error ?? '', /'publish' cmd failed/);
    await out.finish();
  });

  it('a publisher that stops writing after it sent data is FAILED by the liveness check: no outbound progress', async () => {
    const { out, results } = run(['stall']);
    const ms = await until('FAILED', () => results[0]?.status === StreamInfo_Status.FAILED, 10_000);
    assert.equal(results[0]?.error, 'no outbound progress for 2s');
    assert.ok(ms >= 2000, `failed after ${ms} ms, not before the idle window`);
    assert.ok(results[0]?.endedAt && results[0].endedAt > 0n);
    await out.finish();
  });

  it('a drop after progress is retried (retries, last_retry_at, one update per interval); refusals go on until the reconnect window is over → FAILED', async () => {
    // (the liveness window made longer than the reconnect window, which is what this case is about)
    const { out, results, attempts, changes } = run(['drop', 'refuse'], { ...RULES, livenessIdleMs: 10_000 });
    await until('a retry', () => (results[0]?.retries ?? 0) >= 1, 5000);
    const firstRetryAt = Date.now();
    assert.equal(results[0]?.status, StreamInfo_Status.ACTIVE);
    assert.ok((results[0]?.lastRetryAt ?? 0n) > 0n);
    await until('FAILED', () => results[0]?.status === StreamInfo_Status.FAILED, 10_000);
    const windowMs = Date.now() - firstRetryAt;
    assert.ok(windowMs >= 2000, `FAILED ${windowMs} ms after the first retry (window 3 s)`);
    assert.ok(attempts() >= 3, `${attempts()} attempts`);
    assert.equal(results[0]?.retries, attempts() - 1);
    assert.match(results[0]?.error ?? '', /'publish' cmd failed/);
    // retry 1 pushed an update; the later ones fall inside the 60 s interval; then FAILED
    assert.equal(changes(), 2);
    await out.finish();
  });

  it('the liveness window also runs while the URL reconnects: no progress for it since the last → FAILED, whatever the retries', async () => {
    const { out, results, attempts } = run(['drop', 'refuse'], { ...RULES, reconnectWindowMs: 60_000 });
    await until('a retry', () => (results[0]?.retries ?? 0) >= 1, 5000);
    const ms = await until('FAILED', () => results[0]?.status === StreamInfo_Status.FAILED, 10_000);
    assert.equal(results[0]?.error, 'no outbound progress for 2s');
    assert.ok(ms <= 2500, `FAILED ${ms} ms after the first retry`);
    assert.ok(attempts() >= 2);
    await out.finish();
  });

  it('a reconnection that carries media again ends the outage: a later drop is retried anew', async () => {
    const { out, results, attempts } = run(['drop', 'drop-late', 'healthy']);
    await until('third attempt', () => attempts() >= 3, 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(results[0]?.status, StreamInfo_Status.ACTIVE, results[0]?.error);
    assert.equal(results[0]?.retries, 2);
    await out.finish();
    assert.equal(results[0]?.status, StreamInfo_Status.FINISHED);
  });
});

describe('tcpReadProgress (ss)', () => {
  it('grows with what a loopback server reads; stands still once it stopped reading while the client goes on writing; nothing for an unknown pid', async () => {
    const net = await import('node:net');
    let server: import('node:net').Socket | null = null;
    const srv = net.createServer((s) => {
      server = s;
      s.resume();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const sock = net.connect((srv.address() as { port: number }).port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    await new Promise<void>((r) => sock.write(Buffer.alloc(300_000), () => r()));
    await sleep(200);
    const m = await tcpReadProgress([process.pid, 999_999_999]);
    const read = m.get(process.pid) ?? 0;
    assert.ok(read >= 300_000, `progress ${read}`);
    assert.equal(m.get(999_999_999), undefined);
    // The server stops reading (its window may still open a little, once, as data arrives); then
    // the client writes 2 MB more, which waits in the client's send buffer.
    (server as unknown as import('node:net').Socket).pause();
    sock.write(Buffer.alloc(300_000));
    await sleep(500);
    const stopped = (await tcpReadProgress([process.pid])).get(process.pid) ?? 0;
    for (let i = 0; i < 20; i++) sock.write(Buffer.alloc(100_000));
    await sleep(500);
    const later = (await tcpReadProgress([process.pid])).get(process.pid) ?? 0;
    sock.destroy();
    srv.close();
    assert.ok(later - stopped <= 4096, `progress ${later - stopped} bytes after the server stopped reading`);
  });
});
