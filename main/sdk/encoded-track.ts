import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { ChromiumHost } from '../capture/chromium-host.js';
import type { CaptureHostOptions } from '../capture/capture-host.js';
import { StaticServer } from '../capture/static-server.js';
import { logger } from '../log.js';

/**
 * The encoded frames of ONE track, as the publisher sent them (no decode, no encode): rtc-node
 * 1.1.0 only hands out decoded media, so a headless Chromium page (templates/track) joins as the
 * recorder, subscribes to the track, reads each encoded frame through encoded insertable streams
 * on its receiver and posts it to a loopback WebSocket served here. Frames carry their RTP timestamp (exact
 * spacing, from the publisher's clock) and their arrival time (to anchor them on the egress clock).
 */

const log = logger('encoded-track');

export const TRACK_PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../templates/track');

export interface EncodedFrame {
  readonly kind: 'video' | 'audio';
  readonly keyframe: boolean;
  readonly payloadType: number;
  readonly rtpTimestamp: number;
  /** Arrival at the page, µs on the wall clock (performance.timeOrigin + now). */
  readonly arrivalUs: number;
  /** Video keyframes: the coded size (0 when unknown). */
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

const HEADER_LENGTH = 24;

/** Parses one binary frame message of the page (layout: templates/track/src/main.ts). */
export function parseFrameMessage(buf: Buffer): EncodedFrame | null {
  if (buf.length < HEADER_LENGTH || buf[0] !== 1) return null;
  return {
    kind: buf[1] === 0 ? 'video' : 'audio',
    keyframe: (buf.readUInt8(2) & 1) === 1,
    payloadType: buf.readUInt8(3),
    rtpTimestamp: buf.readUInt32LE(4),
    arrivalUs: buf.readDoubleLE(8),
    width: buf.readUInt16LE(16),
    height: buf.readUInt16LE(18),
    data: buf.subarray(HEADER_LENGTH),
  };
}

const ControlMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('track'), mime: z.string() }),
  z.object({ type: z.literal('subscribed'), kind: z.string(), via: z.string().optional() }),
  z.object({ type: z.literal('ended'), reason: z.string() }),
  z.object({ type: z.literal('muted'), muted: z.boolean() }),
  z.object({ type: z.literal('disconnected'), reason: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type ControlMessage = z.infer<typeof ControlMessage>;

export interface EncodedTrackEvents {
  frame: [EncodedFrame];
  control: [ControlMessage];
  /** The browser went away without being asked to. */
  died: [Error];
}

export interface EncodedTrackOptions {
  readonly wsUrl: string;
  readonly token: string;
  readonly trackSid: string;
  readonly egressId: string;
  readonly workDir: string;
  readonly host: Pick<CaptureHostOptions, 'insecure' | 'sandbox' | 'extraFlags' | 'chromePath'>;
}

export class EncodedTrackPage extends EventEmitter<EncodedTrackEvents> {
  readonly #static = new StaticServer(TRACK_PAGE_DIR);
  #wss: WebSocketServer | null = null;
  #host: ChromiumHost | null = null;
  readonly #sockets = new Set<WebSocket>();
  /** The page worker's socket that carries the video frames (keyframe requests go back on it). */
  #videoSocket: WebSocket | null = null;
  #closed = false;

  constructor(private readonly opts: EncodedTrackOptions) {
    super();
  }

  pids(): number[] {
    return this.#host?.pids() ?? [];
  }

  /** A frame's arrival (page clock, µs) on the egress clock. */
  toEgressUs(us: number): number {
    return this.#host ? this.#host.toEgressClock(us, 'page') : us;
  }

  async open(): Promise<void> {
    const base = await this.#static.listen(0);
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 16 * 1024 * 1024 });
    this.#wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', () => resolve());
      wss.once('error', reject);
    });
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      this.#sockets.add(ws);
      if (new URL(req.url ?? '/', 'ws://127.0.0.1').searchParams.get('kind') === 'video') this.#videoSocket = ws;
      ws.on('close', () => {
        this.#sockets.delete(ws);
        if (this.#videoSocket === ws) this.#videoSocket = null;
      });
      ws.on('message', (data, isBinary) => {
        const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (isBinary) {
          const f = parseFrameMessage(buf);
          if (f) this.emit('frame', f);
          return;
        }
        let parsed: ControlMessage;
        try {
          parsed = ControlMessage.parse(JSON.parse(buf.toString('utf8')));
        } catch {
          log.warn(`unexpected message from the track page: ${buf.toString('utf8').slice(0, 200)} [egress:${this.opts.egressId}]`);
          return;
        }
        this.emit('control', parsed);
      });
    });
    const ingest = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const q = new URLSearchParams({ url: this.opts.wsUrl, token: this.opts.token, track: this.opts.trackSid, ingest });
    // Test hook: frames handed over out of order (`reorder=N:M&late=N:M`, see the page).
    for (const [k, v] of new URLSearchParams(process.env['EGRESS_TEST_TRACK_FAULTS'] ?? '')) if (k === 'reorder' || k === 'late') q.set(k, v);
    const host = new ChromiumHost({ width: 320, height: 240, framerate: 1, workDir: this.opts.workDir, egressId: this.opts.egressId, ...this.opts.host });
    this.#host = host;
    host.on('died', (err) => {
      if (!this.#closed) this.emit('died', err);
    });
    await host.open(`${base}index.html?${q.toString()}`);
  }

  /** Asks the publisher for a keyframe, through the page (which sends at most one every 500 ms). */
  requestKeyframe(): void {
    if (this.#closed || this.#videoSocket?.readyState !== 1) return;
    this.#videoSocket.send(JSON.stringify({ type: 'keyframe' }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#host?.close();
    for (const ws of this.#sockets) ws.terminate();
    const wss = this.#wss;
    if (wss) await new Promise<void>((r) => wss.close(() => r()));
    await this.#static.close();
  }
}
