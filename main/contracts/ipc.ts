import { z } from 'zod';

/**
 * The booth app's IPC contract: one channel per operation, shared by the main process (which
 * validates every message with these schemas) and the preload bridge. The renderer never sees
 * ipcRenderer, only the typed API below.
 */

export const IpcChannel = {
  Start: 'egress:start',
  Stop: 'egress:stop',
  Status: 'egress:status',
} as const;

export const boothStartSchema = z
  .object({
    url: z.string().url().optional(),
    durationS: z.number().nonnegative().max(24 * 3600).default(0),
    preset: z.string().max(40).optional(),
    audioOnly: z.boolean().default(false),
    videoOnly: z.boolean().default(false),
    out: z.string().max(4096).optional(),
  })
  .strict();
export type BoothStartRequest = z.input<typeof boothStartSchema>;

export interface BoothStatus {
  readonly egressId: string;
  readonly status: string;
  readonly error: string;
  readonly location: string;
}

/** What the booth UI gets on `window.egressBooth`. */
export interface BoothApi {
  start(req: BoothStartRequest): Promise<BoothStatus>;
  stop(): Promise<BoothStatus | null>;
  onStatus(cb: (s: BoothStatus) => void): () => void;
}
