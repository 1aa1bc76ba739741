import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, ipcMain, shell, type IpcMainInvokeEvent } from 'electron';
import { boothOperations, describeZodError, IPC_EVENT_CHANNEL, ipcChannelOf, type BoothEvent, type BoothOperation } from '../contracts/ipc.js';
import { EgressError, toEgressError } from '../contracts/errors.js';
import { loadConfig } from '../config/index.js';
import { BoothService } from '../booth/booth-service.js';
import { boothConfigDir } from '../booth/config-dir.js';
import { ElectronHost } from './electron-host.js';
import { logger } from '../log.js';

/**
 * Electron entry (package.json `main`, `egress app`): the desktop recording booth. The booth service
 * (main/booth) owns the recordings; this file is only its IPC transport — one channel per operation,
 * each message checked with the operation's schema (main/contracts/ipc.ts), the same schemas the
 * console's HTTP API uses. Recordings use the Electron capture host (offscreen window); the page being
 * recorded never shares a process or a preload with the booth UI. On a machine without a display,
 * start it with `--ozone-platform=headless`, or use `egress console` instead.
 */

const log = logger('app');
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../../..');

let booth: BrowserWindow | null = null;

/** Accepts IPC only from the booth window's own top frame. */
function fromBooth(e: IpcMainInvokeEvent): boolean {
  return booth !== null && e.sender === booth.webContents && e.senderFrame === booth.webContents.mainFrame;
}

async function main(): Promise<void> {
  await app.whenReady();
  const service = new BoothService({
    config: loadConfig({ requireConfig: false }),
    configDir: boothConfigDir(),
    recordingsDir: join(app.getPath('videos'), 'egress'),
    templatesDir: join(ROOT, 'templates'),
    hostFactory: (o) => new ElectronHost(o),
    reveal: (path) => shell.showItemInFolder(path),
  });
  await service.init();
  for (const op of Object.keys(boothOperations) as BoothOperation[]) {
    ipcMain.handle(ipcChannelOf(op), async (e, raw: unknown) => {
      if (!fromBooth(e)) throw new Error('not allowed');
      const parsed = boothOperations[op].safeParse(raw ?? {});
      // Errors cross IPC as their message only: the EgressError text the UI shows.
      if (!parsed.success) throw new Error(describeZodError(parsed.error));
      try {
        return await service.invoke(op, parsed.data);
      } catch (err) {
        throw new Error(toEgressError(err).message);
      }
    });
  }
  service.on('event', (e: BoothEvent) => {
    if (booth && !booth.isDestroyed()) booth.webContents.send(IPC_EVENT_CHANNEL, e);
  });
  booth = new BrowserWindow({
    width: 1100,
    height: 800,
    webPreferences: {
      preload: join(ROOT, 'dist/preload/booth-preload.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
    },
  });
  booth.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  booth.webContents.on('will-navigate', (ev) => ev.preventDefault());
  await booth.loadFile(join(ROOT, 'dist/renderer/index.html'));
  let quitting = false;
  app.on('window-all-closed', () => {
    if (quitting) return;
    quitting = true;
    // A running recording is finished and listed before the app goes.
    void service.close().finally(() => app.quit());
  });
}

main().catch((err: unknown) => {
  log.error(`app failed: ${err instanceof EgressError ? err.message : (err as Error).message}`);
  app.exit(1);
});
