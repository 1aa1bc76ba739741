/**
 * Child-process host of one synthetic publisher (publisher.ts), driven by remote-publisher.ts over
 * Node IPC. A publisher stands for a remote client: in its own process its media loops are not
 * stalled by the test's event loop (ffmpeg decodes, HTTP polling), which otherwise delays audio
 * frames at the source by up to ~230 ms and shows up as A/V offset in the recording.
 */
import { disposeRtc, startPublisher, type Publisher, type PublisherOptions } from './publisher.js';

type Method = 'publishVideo' | 'unpublishVideo' | 'publishAudio' | 'unpublishAudio' | 'muteAudio' | 'muteVideo' | 'disconnect' | 'reconnect' | 'stop';
export type ChildRequest = { id: number; op: 'start'; opts: PublisherOptions } | { id: number; op: 'call'; method: Method; arg?: boolean };
export interface ChildState {
  trackSids: { video?: string; audio?: string };
  connected: boolean;
  stats: Publisher['stats'];
  epochMs: number;
}
export type ChildReply = { id?: number; ok: boolean; error?: string; value?: string; state?: ChildState };

let pub: Publisher | null = null;
const reply = (m: ChildReply): void => {
  process.send?.(m);
};
const state = (): ChildState | undefined => (pub ? { trackSids: pub.trackSids, connected: pub.connected, stats: { ...pub.stats }, epochMs: pub.epochMs } : undefined);

async function handle(req: ChildRequest): Promise<string | undefined> {
  if (req.op === 'start') {
    if (pub) throw new Error('publisher already started');
    pub = await startPublisher(req.opts);
    return undefined;
  }
  if (!pub) throw new Error('publisher not started');
  const r: unknown = await (pub[req.method] as (a?: boolean) => Promise<unknown>)(req.arg);
  return typeof r === 'string' ? r : undefined;
}

process.on('message', (raw: ChildRequest) => {
  handle(raw).then(
    (value) => reply({ id: raw.id, ok: true, ...(value !== undefined ? { value } : {}), state: state() }),
    (err: unknown) => reply({ id: raw.id, ok: false, error: err instanceof Error ? err.message : String(err), state: state() }),
  );
});

const pushState = setInterval(() => {
  const s = state();
  if (s) reply({ ok: true, state: s });
}, 1000);

// The test process went away (or closed the channel): leave the room and exit.
process.on('disconnect', () => {
  clearInterval(pushState);
  void (async () => {
    await pub?.stop().catch(() => undefined);
    await disposeRtc().catch(() => undefined);
    process.exit(0);
  })();
});
