import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { frameSize, type AudioChunkIn, type EncodedVideoIn, type RawVideoFormat, type VideoFrameIn } from '../../gst/media-transport.js';
import { checkH264AccessUnit } from '../../gst/h264-annexb.js';
import { logger } from '../log.js';
import type { CaptureClock } from './clock.js';

/**
 * The loopback WebSocket endpoint the in-page capture script (templates/capture/page-capture.ts)
 * streams into. One per egress, bound to 127.0.0.1 on a random port with an unguessable path, and it
 * accepts exactly one connection. Every message is checked before use: a page is untrusted input.
 */

const log = logger('ingest');

const HEADER = 24;
const FORMATS: Record<number, RawVideoFormat> = { 1: 'I420', 2: 'NV12', 3: 'RGBA', 4: 'RGBx', 5: 'BGRA', 6: 'BGRx' };
const MAX_DIMENSION = 8192;
/** Encoded video (kind 3): codec codes, flag bits, and the largest access unit accepted. */
const ENCODED_H264 = 1;
const FLAG_KEY = 1;
const FLAG_REPEAT = 2;
const MAX_ACCESS_UNIT_BYTES = 8 * 1024 * 1024;

const controlMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), atUs: z.number().finite(), width: z.number().int().nonnegative(), height: z.number().int().nonnegative() }),
  z.object({ type: z.literal('ended'), atUs: z.number().finite() }),
  z.object({ type: z.literal('error'), message: z.string().max(2000) }),
  /** Counters of the in-page encoder (cumulative): frames dropped before encoding, repeats encoded. */
  z.object({ type: z.literal('stats'), dropped: z.number().int().nonnegative(), repeated: z.number().int().nonnegative() }),
]);
export type CaptureControlMessage = z.infer<typeof controlMessage>;

const CLOCKS: Record<number, CaptureClock> = { 0: 'page', 1: 'monotonic', 2: 'egress' };

/** A frame or chunk as captured: its pts is on `clock` until the controller maps it. */
export type CapturedVideo = VideoFrameIn & { readonly clock: CaptureClock };
export type CapturedAudio = AudioChunkIn & { readonly clock: CaptureClock };
export type CapturedEncodedVideo = EncodedVideoIn & { readonly clock: CaptureClock };

export interface CaptureIngestEvents {
  video: [CapturedVideo];
  audio: [CapturedAudio];
  /** One H.264 access unit encoded in the page (the in-browser encode path). */
  encoded: [CapturedEncodedVideo];
  control: [CaptureControlMessage];
  /** The page's connection closed (capture stopped, page crashed or browser died). */
  disconnected: [];
}

export class CaptureIngest extends EventEmitter<CaptureIngestEvents> {
  readonly #token = randomBytes(16).toString('hex');
  #server: WebSocketServer | null = null;
  readonly #clients = new Set<WebSocket>();
  #accepted = 0;
  #rejected = 0;

  /** @param maxConnections connections accepted in total (1: the page; 2: page + host-side video). */
  constructor(private readonly maxConnections = 1) {
    super();
  }

  /** Binds to 127.0.0.1 on a free port; resolves with the URL the page must connect to. */
  async listen(): Promise<string> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024, perMessageDeflate: false });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('connection', (ws, req) => {
      if (req.url !== `/capture/${this.#token}` || this.#accepted >= this.maxConnections) {
        ws.close(1008, 'not allowed');
        return;
      }
      this.#accepted++;
      this.#clients.add(ws);
      ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
      // Any capture connection closing ends the capture: a partial capture is not a recording.
      ws.on('close', () => {
        this.#clients.delete(ws);
        this.emit('disconnected');
      });
      ws.on('error', (err) => log.warn(`capture socket error: ${err.message}`));
    });
    const port = (server.address() as AddressInfo).port;
    return `ws://127.0.0.1:${port}/capture/${this.#token}`;
  }

  /** Messages that failed validation (logged once each kind, counted always). */
  get rejected(): number {
    return this.#rejected;
  }

  /** Asks the page's encoder for a keyframe next (encode path; a raw-frame page ignores it). */
  requestKeyframe(): void {
    for (const c of this.#clients) if (c.readyState === c.OPEN) c.send(JSON.stringify({ type: 'keyframe' }));
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.terminate();
    this.#clients.clear();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #reject(why: string): void {
    if (this.#rejected++ < 5) log.warn(`dropped capture message: ${why}`);
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (!isBinary) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString('utf8'));
      } catch {
        return this.#reject('invalid JSON');
      }
      const msg = controlMessage.safeParse(parsed);
      if (!msg.success) return this.#reject('invalid control message');
      this.emit('control', msg.data);
      return;
    }
    if (buf.length < HEADER) return this.#reject('short message');
    const kind = buf.readUInt8(0);
    const ptsUs = buf.readDoubleLE(16);
    const clock = CLOCKS[buf.readUInt8(12)];
    if (!Number.isFinite(ptsUs) || !clock) return this.#reject('bad timestamp');
    const payload = buf.subarray(HEADER);
    if (kind === 1) {
      const format = FORMATS[buf.readUInt8(1)];
      const width = buf.readUInt32LE(4);
      const height = buf.readUInt32LE(8);
      if (!format || width === 0 || height === 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) return this.#reject('bad video header');
      if (payload.length !== frameSize(format, width, height)) return this.#reject('video payload size mismatch');
      this.emit('video', { ptsUs, clock, format, width, height, data: payload });
    } else if (kind === 2) {
      const channels = buf.readUInt16LE(2);
      const sampleRate = buf.readUInt32LE(4);
      if (channels < 1 || channels > 8 || sampleRate < 8000 || sampleRate > 192000) return this.#reject('bad audio header');
      if (payload.length % (4 * channels) !== 0) return this.#reject('audio payload size mismatch');
      this.emit('audio', { ptsUs, clock, sampleRate, channels, data: payload });
    } else if (kind === 3) {
      const flags = buf.readUInt8(2);
      const width = buf.readUInt32LE(4);
      const height = buf.readUInt32LE(8);
      if (buf.readUInt8(1) !== ENCODED_H264 || (flags & ~(FLAG_KEY | FLAG_REPEAT)) !== 0 || buf.readUInt8(3) !== 0) return this.#reject('bad encoded video header');
      if (width === 0 || height === 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) return this.#reject('bad encoded video size');
      if (payload.length > MAX_ACCESS_UNIT_BYTES) return this.#reject('encoded video payload too large');
      const key = (flags & FLAG_KEY) !== 0;
      const why = checkH264AccessUnit(payload, key);
      if (why) return this.#reject(why);
      this.emit('encoded', { ptsUs, clock, key, repeat: (flags & FLAG_REPEAT) !== 0, width, height, data: payload });
    } else {
      this.#reject(`unknown kind ${kind}`);
    }
  }
}
