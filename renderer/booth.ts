import type { BoothApi, BoothEvent, BoothRecordingState, BoothSettings, BoothStartRequest, BoothState, RecordingEntry } from '../main/contracts/ipc.js';
import { httpBoothApi } from './http-api.js';

// The booth UI, the same page in the Electron app (window.egressBooth, from the preload) and in a
// browser on `egress console` (HTTP + server-sent events). Plain DOM; every control is a real
// button or labelled field, so the booth works from the keyboard alone.

const booth: BoothApi = (window as unknown as { egressBooth?: BoothApi }).egressBooth ?? httpBoothApi();

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};
const input = (id: string): HTMLInputElement => $<HTMLInputElement>(id);
const select = (id: string): HTMLSelectElement => $<HTMLSelectElement>(id);

const statusEl = $('status');
const elapsedEl = $('elapsed');
const bytesEl = $('bytes');
const audioEl = $<HTMLMeterElement>('audio');
const phaseEl = $('phase');
const uploadEl = $<HTMLProgressElement>('upload');
const errorEl = $('error');
const previewEl = $<HTMLImageElement>('preview');
const startBtn = $<HTMLButtonElement>('start');
const pauseBtn = $<HTMLButtonElement>('pause');
const resumeBtn = $<HTMLButtonElement>('resume');
const stopBtn = $<HTMLButtonElement>('stop');
const tbody = $('recordings').querySelector('tbody') as HTMLTableSectionElement;
const noRecordings = $('no-recordings');

let state: BoothState | null = null;
let shownEgressId = '';

function showError(message: string): void {
  errorEl.textContent = message;
  errorEl.hidden = message === '';
}

/** Runs an operation; its error (the original's text) is shown, not thrown. */
async function act<T>(op: () => Promise<T>): Promise<T | undefined> {
  try {
    const r = await op();
    showError('');
    return r;
  } catch (err) {
    showError(err instanceof Error ? err.message.replace(/^Error invoking remote method '[^']+': (Error: )?/, '') : String(err));
    return undefined;
  }
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function renderState(s: BoothState): void {
  state = s;
  const r: BoothRecordingState | null = s.recording;
  const status = r?.status ?? 'IDLE';
  statusEl.textContent = status;
  statusEl.dataset['status'] = status;
  elapsedEl.textContent = formatElapsed(r?.elapsedMs ?? 0);
  bytesEl.textContent = formatBytes(r?.bytes ?? 0);
  audioEl.value = r?.audio ? Math.min(1, r.audio.peak) : 0;
  audioEl.title = r?.audio ? `peak ${r.audio.peak.toFixed(2)}, rms ${r.audio.rms.toFixed(2)}` : 'no audio';
  const up = r?.upload;
  // How much of the finished file the storage has taken (the upload runs while ENDING).
  uploadEl.value = up && up.totalBytes > 0 ? up.sentBytes / up.totalBytes : 0;
  uploadEl.title = up ? `${formatBytes(up.sentBytes)} of ${formatBytes(up.totalBytes)}` : 'not stored yet';
  const storing = up && s.busy ? `${Math.floor((100 * up.sentBytes) / Math.max(1, up.totalBytes))} % of ${formatBytes(up.totalBytes)}` : '';
  phaseEl.textContent = [r?.phase, storing, r?.status === 'PAUSED' ? 'paused: nothing is written' : '', r?.location && !s.busy ? `saved: ${r.location}` : ''].filter(Boolean).join(' — ');
  if (r && r.egressId !== shownEgressId) {
    shownEgressId = r.egressId;
    previewEl.removeAttribute('src');
    delete previewEl.dataset['seq'];
  }
  if (r?.error && !s.busy) showError(r.error);
  startBtn.disabled = s.busy;
  pauseBtn.disabled = status !== 'ACTIVE';
  resumeBtn.disabled = status !== 'PAUSED';
  stopBtn.disabled = !s.busy || status === 'ENDING';
  const destination = select('destination');
  const storageOption = destination.querySelector('option[value=storage]') as HTMLOptionElement;
  storageOption.disabled = !s.storageConfigured;
  input('folder').placeholder = s.recordingsDir;
}

function cell(row: HTMLTableRowElement, text: string, cls?: string): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderRecordings(list: readonly RecordingEntry[]): void {
  tbody.replaceChildren();
  noRecordings.hidden = list.length > 0;
  for (const r of list) {
    const row = tbody.insertRow();
    row.dataset['id'] = r.id;
    cell(row, r.startedAt ? new Date(r.startedAt).toLocaleString() : '');
    cell(row, r.source);
    cell(row, r.durationS > 0 ? formatElapsed(r.durationS * 1000) : '');
    cell(row, r.sizeBytes > 0 ? formatBytes(r.sizeBytes) : '');
    const st = cell(row, r.status.replace(/^EGRESS_/, ''));
    if (r.error) {
      const e = document.createElement('div');
      e.className = 'error';
      e.textContent = r.error;
      st.append(e);
    }
    const where = cell(row, r.storedIn);
    const path = document.createElement('div');
    path.className = 'path';
    path.textContent = r.location;
    where.append(path);
    const actions = row.insertCell();
    const url = r.playable ? booth.fileUrl(r.id) : null;
    if (url) {
      const a = document.createElement('a');
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = 'Play';
      a.setAttribute('aria-label', `Play recording ${r.id}`);
      actions.append(a);
    }
    if (r.location) {
      const reveal = document.createElement('button');
      reveal.type = 'button';
      reveal.textContent = state?.canReveal ? 'Reveal' : 'Show path';
      reveal.setAttribute('aria-label', `${reveal.textContent} of recording ${r.id}`);
      reveal.addEventListener('click', () => {
        void act(() => booth.revealRecording({ id: r.id })).then((res) => {
          if (res && !res.revealed) path.textContent = `${res.path} (copy this path)`;
        });
      });
      actions.append(reveal);
    }
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete recording ${r.id}`);
    del.addEventListener('click', () => {
      if (!confirm(`Delete recording ${r.id}${r.playable ? ' and its file' : ''}?`)) return;
      void act(() => booth.deleteRecording({ id: r.id })).then((l) => l && renderRecordings(l));
    });
    actions.append(del);
  }
}

function showKind(): void {
  const room = input('kind-room').checked;
  $('web-fields').hidden = room;
  $('room-fields').hidden = !room;
}

function fillForm(s: BoothSettings): void {
  input(s.sourceKind === 'room' ? 'kind-room' : 'kind-web').checked = true;
  input('url').value = s.url;
  input('server-url').value = s.serverUrl;
  input('room-name').value = s.roomName;
  select('layout').value = s.layout;
  input('api-key').value = s.apiKey;
  select('preset').value = s.preset;
  input('audio-only').checked = s.audioOnly;
  input('video-only').checked = s.videoOnly;
  select('destination').value = s.destination;
  input('folder').value = s.folder;
  select('file-type').value = s.fileType;
  input('rtmp-url').value = s.rtmpUrl;
  input('hls-dir').value = s.hlsDir;
  showKind();
}

function readForm(): { settings: BoothSettings; start: BoothStartRequest } {
  const v = (id: string): string => input(id).value.trim();
  const settings: BoothSettings = {
    sourceKind: input('kind-room').checked ? 'room' : 'web',
    url: v('url'),
    serverUrl: v('server-url'),
    roomName: v('room-name'),
    layout: select('layout').value,
    apiKey: v('api-key'),
    preset: select('preset').value as BoothSettings['preset'],
    audioOnly: input('audio-only').checked,
    videoOnly: input('video-only').checked,
    destination: select('destination').value as BoothSettings['destination'],
    folder: v('folder'),
    fileType: select('file-type').value as BoothSettings['fileType'],
    rtmpUrl: v('rtmp-url'),
    hlsDir: v('hls-dir'),
  };
  const source: BoothStartRequest['source'] =
    settings.sourceKind === 'room'
      ? { kind: 'room', serverUrl: settings.serverUrl, roomName: settings.roomName, layout: settings.layout as 'grid', apiKey: settings.apiKey, apiSecret: input('api-secret').value, token: input('room-token').value }
      : { kind: 'web', url: settings.url };
  return {
    settings,
    start: {
      source,
      preset: settings.preset,
      audioOnly: settings.audioOnly,
      videoOnly: settings.videoOnly,
      outputs: { destination: settings.destination, folder: settings.folder, fileType: settings.fileType, rtmpUrl: settings.rtmpUrl, hlsDir: settings.hlsDir },
    },
  };
}

function onEvent(e: BoothEvent): void {
  if (e.type === 'state') renderState(e.state);
  else if (e.type === 'recordings') renderRecordings(e.recordings);
  else if (e.type === 'preview' && e.egressId === state?.recording?.egressId) {
    previewEl.src = e.jpeg;
    previewEl.dataset['seq'] = String(e.seq);
  }
}

input('kind-web').addEventListener('change', showKind);
input('kind-room').addEventListener('change', showKind);
$<HTMLFormElement>('start-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const { settings, start } = readForm();
  startBtn.disabled = true;
  void act(async () => {
    await booth.saveSettings(settings);
    return booth.start(start);
  }).then((s) => (s ? renderState(s) : state && renderState(state)));
});
pauseBtn.addEventListener('click', () => void act(() => booth.pause()).then((s) => s && renderState(s)));
resumeBtn.addEventListener('click', () => void act(() => booth.resume()).then((s) => s && renderState(s)));
stopBtn.addEventListener('click', () => void act(() => booth.stop()).then((s) => s && renderState(s)));

booth.onEvent(onEvent);
void act(async () => {
  fillForm(await booth.getSettings());
  renderState(await booth.getState());
  renderRecordings(await booth.listRecordings());
});
