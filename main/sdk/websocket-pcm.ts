import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import type { AudioChunkIn, VideoFrameIn } from '../../gst/media-transport.js';
import { EgressError } from '../contracts/errors.js';
import { logger } from '../log.js';

/**
 * The WebSocket output of a track egress: the egress is the client. It dials the
 * URL with `Content-Type: audio/x-raw`, sends the track's audio as binary frames of raw PCM (s16le,
 * 48 kHz, 2 channels, one frame per chunk, silence included), `{"muted":true|false}` text frames when
 * the track is muted / unmuted, a `ping` every 30 s (and answers the server's pings), and a Close
 * frame at the end. The server closing first is a failure of the egress.
 *
 * It stands where the GStreamer transport stands for a file (MediaTimeline drives both).
 */

const log = logger('websocket');

export const WS_PING_INTERVAL_MS = 30_000;
/** Gaps shorter than this between chunks are timing noise, not missing audio. */
const GAP_FILL_MIN_US = 5_000;

export interface WebSocketPcmEvents {
  /** The server closed the connection (or it broke) before our own close. */
  failed: [EgressError];
}

export class WebSocketPcmSink extends EventEmitter<WebSocketPcmEvents> {
  #ws: WebSocket | null = null;
  #pinger: NodeJS.Timeout | null = null;
  #closing = false;
  #startUs: number | null = null;
  #nextUs: number | null = null;
  bytesSent = 0;

  constructor(private readonly url: string) {
    super();
  }

  /** Dials the server; rejects with the dial error (400). */
  async connect(): Promise<void> {
    const ws = new WebSocket(this.url, { headers: { 'Content-Type': 'audio/x-raw' }, perMessageDeflate: false });
    this.#ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(new EgressError('E_INVALID_INPUT', 'invalid_argument', `websocket dial failed: ${err.message}`)));
    });
    ws.on('error', (err) => log.warn(`websocket error: ${err.message}`));
    ws.on('close', () => {
      if (this.#pinger) clearInterval(this.#pinger);
      if (!this.#closing) this.emit('failed', new EgressError('E_INTERNAL', 'unavailable', 'websocket closed by the server', { destination: true }));
    });
    // Received messages are ignored; ws answers pings with pongs itself.
    this.#pinger = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.ping('ping');
    }, WS_PING_INTERVAL_MS);
  }

  get startUs(): number | null {
    return this.#startUs;
  }

  /** Starts at `atUs` (once); returns the start in use, like MediaTransport.start. */
  start(atUs: number): number {
    this.#startUs ??= atUs;
    return this.#startUs;
  }

  pushVideo(_frame: VideoFrameIn): void {
    // audio only (a video track is refused before anything is sent)
  }

  pushAudio(chunk: AudioChunkIn): void {
    const ws = this.#ws;
    if (!ws || this.#closing || ws.readyState !== WebSocket.OPEN) return;
    // The stream is continuous: a gap in the timeline (the source paused) is sent as silence.
    const frames = chunk.data.length / 4 / chunk.channels;
    if (this.#nextUs !== null && chunk.ptsUs - this.#nextUs > GAP_FILL_MIN_US) {
      const gap = Math.round(((chunk.ptsUs - this.#nextUs) * chunk.sampleRate) / 1e6);
      ws.send(Buffer.alloc(gap * 4), { binary: true });
      this.bytesSent += gap * 4;
    }
    this.#nextUs = chunk.ptsUs + (frames * 1e6) / chunk.sampleRate;
    ws.send(f32ToS16Stereo(chunk), { binary: true });
    this.bytesSent += frames * 4;
  }

  sendMuted(muted: boolean): void {
    const ws = this.#ws;
    if (ws && !this.#closing && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ muted }));
  }

  /** EOS: a Close frame without payload, then the socket closes. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#pinger) clearInterval(this.#pinger);
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 5000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close();
    });
  }
}

/** Interleaved float32 (any channel count, 48 kHz) → interleaved s16le stereo. */
function f32ToS16Stereo(chunk: AudioChunkIn): Buffer {
  const ch = chunk.channels;
  const frames = chunk.data.length / 4 / ch;
  // Host-endian typed arrays (little-endian on every platform this runs on); copy for alignment.
  const src = new Float32Array(chunk.data.buffer.slice(chunk.data.byteOffset, chunk.data.byteOffset + chunk.data.length));
  const out = new Int16Array(frames * 2);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < 2; c++) {
      const v = src[i * ch + Math.min(c, ch - 1)] as number;
      out[i * 2 + c] = Math.max(-32768, Math.min(32767, Math.round(v * 32768)));
    }
  }
  return Buffer.from(out.buffer);
}
