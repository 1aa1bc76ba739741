// The booth window's preload (CommonJS: sandboxed preloads cannot be ES modules). It exposes one
// function per operation; the page never gets ipcRenderer or Node.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { BoothApi, BoothStartRequest, BoothStatus } from '../main/contracts/ipc.js';

// Channel names are repeated here rather than imported: a sandboxed preload can only require
// 'electron' and a few Node built-ins, not project modules. main/contracts/ipc.ts is the source.
const START = 'egress:start';
const STOP = 'egress:stop';
const STATUS = 'egress:status';

const api: BoothApi = {
  start: (req: BoothStartRequest) => ipcRenderer.invoke(START, req) as Promise<BoothStatus>,
  stop: () => ipcRenderer.invoke(STOP) as Promise<BoothStatus | null>,
  onStatus: (cb: (s: BoothStatus) => void) => {
    const listener = (_e: IpcRendererEvent, s: BoothStatus): void => cb(s);
    ipcRenderer.on(STATUS, listener);
    return () => ipcRenderer.off(STATUS, listener);
  },
};

contextBridge.exposeInMainWorld('egressBooth', api);
