import type { BoothApi, BoothEvent, BoothOperation } from '../main/contracts/ipc.js';

/**
 * The console transport of the booth UI (a browser on `egress console`): one POST per operation and
 * the live events over server-sent events. The token travels in the HttpOnly cookie the console set
 * when the page was first opened with `?token=`; this script never sees it.
 */

class ApiError extends Error {}

async function post<T>(op: BoothOperation, body: unknown = {}): Promise<T> {
  const res = await fetch(`/api/${op}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
  const json = (await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }))) as { error?: string };
  if (!res.ok) throw new ApiError(json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

export function httpBoothApi(): BoothApi {
  return {
    getState: () => post('getState'),
    start: (req) => post('start', req),
    pause: () => post('pause'),
    resume: () => post('resume'),
    stop: () => post('stop'),
    listRecordings: () => post('listRecordings'),
    deleteRecording: (req) => post('deleteRecording', req),
    revealRecording: (req) => post('revealRecording', req),
    getSettings: () => post('getSettings'),
    saveSettings: (req) => post('saveSettings', req),
    fileUrl: (id) => `/api/recordings/${encodeURIComponent(id)}/file`,
    onEvent: (cb: (e: BoothEvent) => void) => {
      const source = new EventSource('/api/events');
      const handler = (m: MessageEvent<string>): void => cb(JSON.parse(m.data) as BoothEvent);
      for (const type of ['state', 'recordings', 'preview']) source.addEventListener(type, handler as EventListener);
      return () => source.close();
    },
  };
}
