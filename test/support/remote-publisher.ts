/**
 * A synthetic publisher in its own process (publisher-child.ts), with the same handle as an
 * in-process one: `await startRemotePublisher(opts)` then `p.muteAudio(true)`, `p.stop()` …
 * Every room suite uses these, so that what is measured is the recorder, not the test's event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildReply, ChildRequest, ChildState } from './publisher-child.js';
import type { PublisherHandle, PublisherOptions, PublisherStats } from './publisher.js';

const CHILD = fileURLToPath(new URL('./publisher-child.js', import.meta.url));

type Call = Extract<ChildRequest, { op: 'call' }>;
/** A request before it gets its id (Omit distributed over the union). */
type Unnumbered = ChildRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export async function startRemotePublisher(opts: PublisherOptions): Promise<PublisherHandle> {
  // A remote client does not compete with the recorder for the CPU: where the OS allows it, the
  // publisher (every thread of it, so also rtc-node's media threads) runs ahead of the machine's other
  // work, so that a CPU hog slows the recorder under test and not the source it is measured against.
  // Unprivileged, `nice` says it cannot and runs the publisher at normal priority.
  const child: ChildProcess = spawn('nice', ['-n', '-10', process.execPath, CHILD], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    if (!/cannot set niceness/.test(text)) process.stderr.write(text);
  });
  const epochMs = opts.epochMs ?? Math.ceil(Date.now() / 1000) * 1000;
  let last: ChildState = {
    trackSids: {},
    connected: false,
    stats: { videoFrames: 0, videoLate: 0, videoSkipped: 0, audioFrames: 0, audioMaxLateMs: 0, videoMaxLateMs: 0 },
    epochMs,
  };
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: string | undefined) => void; reject: (e: Error) => void }>();
  let exited = false;
  child.on('message', (m: ChildReply) => {
    if (m.state) last = m.state;
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(new Error(`publisher ${opts.identity}: ${m.error ?? 'failed'}`));
  });
  child.on('exit', (code, signal) => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error(`publisher ${opts.identity} process exited (${signal ?? code ?? '?'})`));
    pending.clear();
  });
  const request = (req: Unnumbered): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`publisher ${opts.identity} process is gone`));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ ...req, id } as ChildRequest);
    });
  const call = (method: Call['method'], arg?: boolean): Promise<string | undefined> => request({ op: 'call', method, ...(arg !== undefined ? { arg } : {}) });

  try {
    await request({ op: 'start', opts: { ...opts, epochMs } });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  let stopped = false;
  return {
    identity: opts.identity,
    epochMs,
    get trackSids() {
      return { ...last.trackSids };
    },
    get connected() {
      return last.connected;
    },
    get stats(): PublisherStats {
      return last.stats;
    },
    publishVideo: async () => (await call('publishVideo')) ?? '',
    unpublishVideo: async () => void (await call('unpublishVideo')),
    publishAudio: async () => (await call('publishAudio')) ?? '',
    unpublishAudio: async () => void (await call('unpublishAudio')),
    muteAudio: async (m: boolean) => void (await call('muteAudio', m)),
    muteVideo: async (m: boolean) => void (await call('muteVideo', m)),
    disconnect: async () => void (await call('disconnect')),
    reconnect: async () => void (await call('reconnect')),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (!exited) await call('stop').catch(() => undefined);
      const gone = new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
      child.disconnect?.();
      // The child disposes rtc-node and exits; it gets 5 s before it is killed.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
