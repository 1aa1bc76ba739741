// The booth window's preload (CommonJS: sandboxed preloads cannot be ES modules). It exposes one
// function per booth operation; the page never gets ipcRenderer or Node.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { BoothApi, BoothEvent, BoothOperation } from '../main/contracts/ipc.js';

// Channel names are repeated here rather than imported: a sandboxed preload can only require
// 'electron' and a few Node built-ins, not project modules. main/contracts/ipc.ts (IPC_PREFIX,
// IPC_EVENT_CHANNEL) is the source; the main process validates every message with its schema.
const PREFIX = 'egress:booth:';
const EVENT = 'egress:booth:event';

const invoke = <T,>(op: BoothOperation, req: unknown = {}): Promise<T> => ipcRenderer.invoke(PREFIX + op, req) as Promise<T>;

const api: BoothApi = {
  getState: () => invoke('getState'),
  start: (req) => invoke('start', req),
  pause: () => invoke('pause'),
  resume: () => invoke('resume'),
  stop: () => invoke('stop'),
  listRecordings: () => invoke('listRecordings'),
  deleteRecording: (req) => invoke('deleteRecording', req),
  revealRecording: (req) => invoke('revealRecording', req),
  getSettings: () => invoke('getSettings'),
  saveSettings: (req) => invoke('saveSettings', req),
  // The desktop app plays nothing itself: reveal shows the file in its folder.
  fileUrl: () => null,
  onEvent: (cb: (e: BoothEvent) => void) => {
    const listener = (_e: IpcRendererEvent, ev: BoothEvent): void => cb(ev);
    ipcRenderer.on(EVENT, listener);
    return () => ipcRenderer.off(EVENT, listener);
  },
};

contextBridge.exposeInMainWorld('egressBooth', api);
