import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, ipcMain, type IpcMainInvokeEvent } from 'electron';
import { EncodedFileOutput, EncodingOptionsPreset, WebEgressRequest, type EgressInfo } from '@livekit/protocol';
import { boothStartSchema, IpcChannel, type BoothStatus } from '../contracts/ipc.js';
import { toEgressError } from '../contracts/errors.js';
import { loadConfig } from '../config/index.js';
import { StaticServer } from '../capture/static-server.js';
import { createWebEgress } from '../egress/create-web-egress.js';
import type { WebEgressController } from '../egress/web-egress.js';
import { statusName } from '../egress/status.js';
import { newEgressId } from '../egress/ids.js';
import { ElectronHost } from './electron-host.js';
import { logger } from '../log.js';

/**
 * Electron entry (package.json `main`): the desktop recording booth. Recordings use the Electron
 * capture host (offscreen window); the page being recorded never shares a process or a preload with
 * the booth UI. On a machine without a display, start it with `--ozone-platform=headless` (the
 * appliance image does) — see the README for the open question about Electron 40 and headless Ozone.
 */

const log = logger('app');
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../../..');

let current: WebEgressController | null = null;
let booth: BrowserWindow | null = null;

function toStatus(i: EgressInfo): BoothStatus {
  return { egressId: i.egressId, status: statusName(i.status), error: i.error, location: i.fileResults[0]?.location ?? '' };
}

/** Accepts IPC only from the booth window's own top frame. */
function fromBooth(e: IpcMainInvokeEvent): boolean {
  return booth !== null && e.sender === booth.webContents && e.senderFrame === booth.webContents.mainFrame;
}

async function startRecording(raw: unknown): Promise<BoothStatus> {
  if (current) throw new Error('a recording is already running');
  const req = boothStartSchema.parse(raw);
  const config = loadConfig({ requireConfig: false });
  let demo: StaticServer | null = null;
  let url = req.url;
  if (!url) {
    demo = new StaticServer(join(ROOT, 'templates'));
    url = (await demo.listen()) + 'demo/';
  }
  const preset = req.preset ? (EncodingOptionsPreset as unknown as Record<string, number>)[req.preset] : undefined;
  const request = new WebEgressRequest({
    url,
    audioOnly: req.audioOnly,
    videoOnly: req.videoOnly,
    options: { case: 'preset', value: preset ?? EncodingOptionsPreset.H264_720P_30 },
    fileOutputs: [new EncodedFileOutput({ filepath: req.out ?? join(app.getPath('videos'), 'egress') + '/' })],
  });
  const { controller } = createWebEgress({ egressId: newEgressId(), request: { case: 'web', value: request } }, config, {
    hostFactory: (o) => new ElectronHost(o),
    localBaseDir: app.getPath('videos'),
  });
  current = controller;
  controller.on('update', (i) => booth?.webContents.send(IpcChannel.Status, toStatus(i)));
  void controller.run().then(async (final) => {
    booth?.webContents.send(IpcChannel.Status, toStatus(final));
    current = null;
    await demo?.close();
  });
  if (req.durationS > 0) setTimeout(() => controller.stop('StopEgress API'), req.durationS * 1000);
  return toStatus(controller.info);
}

async function main(): Promise<void> {
  await app.whenReady();
  ipcMain.handle(IpcChannel.Start, async (e, raw: unknown) => {
    if (!fromBooth(e)) throw new Error('not allowed');
    try {
      return await startRecording(raw);
    } catch (err) {
      throw new Error(toEgressError(err).message);
    }
  });
  ipcMain.handle(IpcChannel.Stop, (e) => {
    if (!fromBooth(e)) throw new Error('not allowed');
    return current ? toStatus(current.stop('StopEgress API')) : null;
  });
  booth = new BrowserWindow({
    width: 900,
    height: 600,
    webPreferences: {
      preload: join(ROOT, 'dist/preload/booth-preload.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
    },
  });
  booth.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  booth.webContents.on('will-navigate', (ev) => ev.preventDefault());
  await booth.loadFile(join(ROOT, 'renderer/index.html'));
  app.on('window-all-closed', () => {
    current?.stop('Process killed');
    app.quit();
  });
}

main().catch((err: unknown) => {
  log.error(`app failed: ${(err as Error).message}`);
  app.exit(1);
});
