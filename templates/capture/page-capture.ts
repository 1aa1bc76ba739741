/*
 * The in-page capture script, shared by both capture hosts (Chromium over CDP evaluates it in an
 * isolated world; the Electron host runs it from the preload). It captures the page's own tab — every
 * pixel the compositor draws and every sound the page plays (WebAudio, media elements, WebRTC) — with
 * getDisplayMedia({preferCurrentTab}) and ships raw frames and PCM, each stamped with its capture time
 * on the machine's wall clock (timeOrigin + performance.now(), in µs), to a loopback WebSocket owned by
 * the egress. Audio is read by an AudioWorklet (real-time, sample-accurate), video by
 * MediaStreamTrackProcessor (raw I420, no JPEG round trip).
 *
 * Wire format of a binary message (little-endian): [0] kind 1=video 2=audio, [1] format code,
 * [2..3] channels, [4..7] width | sample rate, [8..11] height, [12..15] reserved, [16..23] f64 pts µs,
 * then the payload (video: planes laid out with GStreamer's default strides; audio: interleaved f32).
 * Text messages are JSON: {type:'started'|'error'|'ended', ...}. Video uses a second connection
 * (see openVideoSender); audio and control messages the first.
 *
 * This file is a classic script (no imports/exports): it is injected as text.
 */

interface EgressCaptureOptions {
  readonly wsUrl: string;
  readonly title: string;
  readonly video: boolean;
  readonly audio: boolean;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

interface EgressCaptureApi {
  start(opts: EgressCaptureOptions): Promise<string>;
  stop(): void;
}

interface AudioChunkMessage {
  readonly frame: number;
  readonly data: Float32Array;
}

// Chrome ships MediaStreamTrackProcessor; lib.dom does not type it yet.
declare class MediaStreamTrackProcessor {
  constructor(init: { track: MediaStreamTrack; maxBufferSize?: number });
  readonly readable: ReadableStream<VideoFrame>;
}

(() => {
  const g = globalThis as unknown as { __egressCapture?: EgressCaptureApi };
  if (g.__egressCapture) return;

  const HEADER = 24;
  const AUDIO_CHUNK_FRAMES = 960; // 20 ms at 48 kHz
  const FORMAT_CODES: Record<string, number> = { I420: 1, NV12: 2, RGBA: 3, RGBX: 4, BGRA: 5, BGRX: 6 };
  const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
  // Tab audio reaches the worklet through the browser's output mixer, the loopback capture and a
  // resampler, which together add a latency that the arrival-based mapping below cannot see (video
  // frames carry their compositor capture time instead). Measured with templates/avsync on Chromium
  // 156 (test/web-egress-avsync): audio arrived ~48 ms after the matching frame. Subtracting it puts
  // both streams on the same instant.
  const AUDIO_PATH_LATENCY_US = 48_000;

  const workletSource = `
    class EgressCaptureProcessor extends AudioWorkletProcessor {
      constructor() { super(); this.n = 0; this.first = 0; this.buf = new Float32Array(${AUDIO_CHUNK_FRAMES} * 2); }
      process(inputs) {
        const input = inputs[0] || [];
        const l = input[0], r = input[1] || input[0];
        const len = l ? l.length : 128;
        if (this.n === 0) this.first = currentFrame;
        for (let i = 0; i < len; i++) {
          this.buf[(this.n + i) * 2] = l ? l[i] : 0;
          this.buf[(this.n + i) * 2 + 1] = r ? r[i] : 0;
        }
        this.n += len;
        if (this.n >= ${AUDIO_CHUNK_FRAMES}) {
          this.port.postMessage({ frame: this.first, data: this.buf }, [this.buf.buffer]);
          this.buf = new Float32Array(${AUDIO_CHUNK_FRAMES} * 2);
          this.n = 0;
        }
        return true;
      }
    }
    registerProcessor('egress-capture', EgressCaptureProcessor);`;

  const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

  let stream: MediaStream | null = null;
  let socket: WebSocket | null = null;
  let audioCtx: AudioContext | null = null;
  let stopped = false;

  const r4 = (n: number): number => (n + 3) & ~3;

  /** Plane layout matching GStreamer's default strides for the format (see media-transport.ts). */
  function layoutOf(format: string, w: number, h: number): { layout: PlaneLayout[]; size: number } | null {
    const cw = Math.ceil(w / 2);
    const ch = Math.ceil(h / 2);
    if (format === 'I420') {
      const ys = r4(w);
      const cs = r4(cw);
      return { layout: [{ offset: 0, stride: ys }, { offset: ys * h, stride: cs }, { offset: ys * h + cs * ch, stride: cs }], size: ys * h + 2 * cs * ch };
    }
    if (format === 'NV12') {
      const ys = r4(w);
      const cs = r4(cw * 2);
      return { layout: [{ offset: 0, stride: ys }, { offset: ys * h, stride: cs }], size: ys * h + cs * ch };
    }
    if (format in FORMAT_CODES) return { layout: [{ offset: 0, stride: w * 4 }], size: w * h * 4 };
    return null;
  }

  function send(buf: ArrayBuffer): boolean {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(buf);
    return true;
  }

  // Video frames (41 MB/s at 720p30) leave through a second socket owned by a dedicated worker: sending
  // them from the main thread of a page that is being tab-captured cost ~0.5 core more (measured with
  // bench/web-egress on Chromium 156), while the worker path costs what a plain socket does.
  const senderSource = `
    let ws = null;
    onmessage = (e) => {
      if (typeof e.data === 'string') { ws = new WebSocket(e.data); ws.binaryType = 'arraybuffer'; ws.onopen = () => postMessage('open'); ws.onclose = () => postMessage('closed'); return; }
      if (e.data === null) { if (ws) ws.close(); return; }
      if (ws && ws.readyState === 1 && ws.bufferedAmount < ${MAX_BUFFERED_BYTES}) ws.send(e.data);
    };`;
  let videoSender: Worker | null = null;

  async function openVideoSender(wsUrl: string): Promise<Worker> {
    const url = URL.createObjectURL(new Blob([senderSource], { type: 'application/javascript' }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<string>) => (e.data === 'open' ? resolve() : reject(new Error('video socket closed')));
      worker.onerror = (e) => reject(new Error(`video sender failed: ${e.message}`));
      worker.postMessage(wsUrl);
    });
    worker.onmessage = (e: MessageEvent<string>) => {
      if (e.data === 'closed') stop();
    };
    return worker;
  }

  async function pumpVideo(track: MediaStreamTrack, sender: Worker): Promise<void> {
    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 2 }).readable.getReader();
    // VideoFrame.timestamp is a monotonic capture time on another origin: map it onto our clock with
    // the smallest arrival delay seen, which converges on the true offset within a few frames.
    let offsetUs = Infinity;
    for (;;) {
      const { value: frame, done } = await reader.read();
      if (done || stopped) {
        frame?.close();
        break;
      }
      try {
        const arrival = nowUs();
        offsetUs = Math.min(offsetUs, arrival - frame.timestamp);
        const format = frame.format ?? '';
        const w = frame.visibleRect?.width ?? frame.displayWidth;
        const h = frame.visibleRect?.height ?? frame.displayHeight;
        const lay = layoutOf(format, w, h);
        if (!lay) continue;
        const buf = new ArrayBuffer(HEADER + lay.size);
        await frame.copyTo(new Uint8Array(buf, HEADER), { layout: lay.layout });
        const dv = new DataView(buf);
        dv.setUint8(0, 1);
        dv.setUint8(1, FORMAT_CODES[format] ?? 0);
        dv.setUint32(4, w, true);
        dv.setUint32(8, h, true);
        dv.setFloat64(16, frame.timestamp + offsetUs, true);
        sender.postMessage(buf, [buf]);
      } finally {
        frame.close();
      }
    }
  }

  async function pumpAudio(track: MediaStreamTrack): Promise<void> {
    const ctx = new AudioContext({ sampleRate: 48000 });
    audioCtx = ctx;
    const url = URL.createObjectURL(new Blob([workletSource], { type: 'application/javascript' }));
    await ctx.audioWorklet.addModule(url);
    URL.revokeObjectURL(url);
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const node = new AudioWorkletNode(ctx, 'egress-capture', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 2, channelCountMode: 'explicit' });
    source.connect(node);
    if (ctx.state !== 'running') await ctx.resume();
    // Context frames → our clock through the context's own (contextTime, performanceTime) pair, read
    // fresh for every chunk: the context's sample clock need not run at exactly the wall clock's rate
    // (a timer-driven fake output device does not), and a fixed offset would drift away from video.
    node.port.onmessage = (ev: MessageEvent<AudioChunkMessage>) => {
      if (stopped) return;
      const { frame, data } = ev.data;
      const frames = data.length / 2;
      const ts = ctx.getOutputTimestamp();
      const ctxTime = ts.contextTime ?? ctx.currentTime;
      const perfTime = ts.performanceTime ?? performance.now();
      // The pair says when a frame is *played out*; the worklet saw it base+output latency earlier.
      const renderAheadS = (ctx.baseLatency || 0) + (ctx.outputLatency || 0);
      const startUs = (performance.timeOrigin + perfTime) * 1000 - (ctxTime - frame / ctx.sampleRate + renderAheadS) * 1e6;
      const buf = new ArrayBuffer(HEADER + data.byteLength);
      new Float32Array(buf, HEADER).set(data);
      const dv = new DataView(buf);
      dv.setUint8(0, 2);
      dv.setUint8(1, 1);
      dv.setUint16(2, 2, true);
      dv.setUint32(4, ctx.sampleRate, true);
      dv.setUint32(8, frames, true);
      dv.setFloat64(16, startUs - AUDIO_PATH_LATENCY_US, true);
      send(buf);
    };
  }

  async function start(opts: EgressCaptureOptions): Promise<string> {
    stopped = false;
    socket = new WebSocket(opts.wsUrl);
    socket.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      (socket as WebSocket).onopen = () => resolve();
      (socket as WebSocket).onerror = () => reject(new Error('capture socket failed to open'));
    });
    socket.onclose = () => stop();
    // The browser auto-selects the tab whose title matches its --auto-select-tab-capture-source-by-title
    // flag: take that title only for the moment of the call.
    const oldTitle = document.title;
    document.title = opts.title;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: opts.framerate, width: { ideal: opts.width }, height: { ideal: opts.height } },
        audio: opts.audio ? { echoCancellation: false, autoGainControl: false, noiseSuppression: false, channelCount: 2, sampleRate: 48000 } : false,
        preferCurrentTab: true,
        selfBrowserSurface: 'include',
      } as DisplayMediaStreamOptions);
    } finally {
      document.title = oldTitle;
    }
    const vt = stream.getVideoTracks()[0];
    const at = stream.getAudioTracks()[0];
    if (opts.video && vt) {
      videoSender = await openVideoSender(opts.wsUrl);
      void pumpVideo(vt, videoSender).catch((e: unknown) => report(e));
    } else vt?.stop();
    if (opts.audio) {
      if (!at) throw new Error('tab audio capture returned no track');
      await pumpAudio(at);
    }
    const settings = vt?.getSettings() ?? {};
    socket.send(JSON.stringify({ type: 'started', atUs: nowUs(), width: settings.width ?? 0, height: settings.height ?? 0 }));
    return JSON.stringify({ ok: true, width: settings.width ?? 0, height: settings.height ?? 0 });
  }

  function report(e: unknown): void {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'error', message }));
  }

  function stop(): void {
    if (stopped) return;
    stopped = true;
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    void audioCtx?.close();
    audioCtx = null;
    videoSender?.postMessage(null);
    videoSender = null;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'ended', atUs: nowUs() }));
      socket.close();
    }
    socket = null;
  }

  g.__egressCapture = { start, stop };
})();
