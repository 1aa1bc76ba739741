/*
 * The in-page capture script, shared by both capture hosts (Chromium over CDP evaluates it in an
 * isolated world; the Electron host evaluates it in an isolated world too). It captures the page's own
 * tab — every pixel the compositor draws and every sound the page plays (WebAudio, media elements,
 * WebRTC) — with getDisplayMedia({preferCurrentTab}) and ships raw frames (I420, no JPEG round trip)
 * and PCM, both read with MediaStreamTrackProcessor and each stamped with its capture time, to a
 * loopback WebSocket owned by the egress, which maps the stamps onto its own clock (capture/clock.ts).
 *
 * Wire format of a binary message (little-endian): [0] kind 1=video 2=audio 3=encoded video,
 * [1] format code (encoded video: 1 = H.264 Annex B), [2..3] channels (encoded video: [2] flags,
 * bit 0 keyframe, bit 1 a repeat of the previous picture), [4..7] width | sample rate, [8..11] height,
 * [12] clock of the pts (1 = the machine's monotonic clock, 0 = this page's timeOrigin +
 * performance.now()), [13..15] reserved, [16..23] f64 pts µs, then the payload (video: planes laid
 * out with GStreamer's default strides; audio: interleaved f32; encoded video: one access unit).
 * Text messages are JSON: {type:'started'|'error'|'ended'|'stats', ...}; the egress may send
 * {type:'keyframe'} (the next encoded frame must be a keyframe). Raw video uses a second connection
 * (see openVideoSender); audio, encoded video and control messages the first.
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
  /** Encode in the page (WebCodecs) and send H.264 instead of raw frames. */
  readonly encode?: EgressPageEncodeOptions;
  /** Take the output latency off the audio stamps (a page whose pictures follow the render time). */
  readonly audioAtRenderTime?: boolean;
}

interface EgressPageEncodeOptions {
  /** avc1 codec string (profile and level), e.g. avc1.4d0028. */
  readonly codec: string;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  readonly bitrate: number;
  /** A keyframe at least every this many frames. */
  readonly keyFrameInterval: number;
}

interface EgressCaptureApi {
  start(opts: EgressCaptureOptions): Promise<string>;
  stop(): void;
  /** A small JPEG (base64, `width` px wide) of a captured frame; '' when there is none. */
  snapshot(width: number): Promise<string>;
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
  const FORMAT_CODES: Record<string, number> = { I420: 1, NV12: 2, RGBA: 3, RGBX: 4, BGRA: 5, BGRX: 6 };
  const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

  const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

  let stream: MediaStream | null = null;
  let socket: WebSocket | null = null;
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
      // send() has copied the bytes: the buffer goes back to the capture loop for the next frame.
      postMessage(e.data, [e.data]);
    };`;
  let videoSender: Worker | null = null;
  /**
   * Frame buffers handed back by the sender once sent, reused for the next frames: a fresh 1.4 MB
   * (720p) buffer per frame cost the renderer page faults and garbage collection on every frame.
   */
  const FRAME_BUFFERS = 4;
  const freeFrameBuffers: ArrayBuffer[] = [];

  function frameBuffer(size: number): ArrayBuffer {
    for (;;) {
      const buf = freeFrameBuffers.pop();
      if (!buf) return new ArrayBuffer(size);
      if (buf.byteLength === size) return buf;
      // A buffer of an earlier frame size: dropped.
    }
  }

  async function openVideoSender(wsUrl: string): Promise<Worker> {
    const url = URL.createObjectURL(new Blob([senderSource], { type: 'application/javascript' }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<string>) => (e.data === 'open' ? resolve() : reject(new Error('video socket closed')));
      worker.onerror = (e) => reject(new Error(`video sender failed: ${e.message}`));
      worker.postMessage(wsUrl);
    });
    worker.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
      if (e.data === 'closed') stop();
      else if (e.data instanceof ArrayBuffer && freeFrameBuffers.length < FRAME_BUFFERS) freeFrameBuffers.push(e.data);
    };
    return worker;
  }

  /**
   * Previews are drawn from the captured frames themselves. A browser screenshot (CDP
   * Page.captureScreenshot) stalls the tab's compositor: the capture lost about 100 ms of frames at
   * every preview, once a second in the booth, and a frozen picture showed in the recording.
   */
  const PREVIEW_WAIT_MS = 500;
  let previewWanted: { resolve: (jpeg: string) => void } | null = null;
  let lastPreview = '';
  let previewWidth = 320;
  let previewEncoding = false;
  /** Size of the frame the newest preview was drawn from (0 × 0 before the first). */
  let previewFrom = { w: 0, h: 0 };
  /** The first frame of a new size, come while a preview was encoding: drawn once that is done. */
  let previewNext: { frame: VideoFrame; w: number; h: number } | null = null;

  function snapshot(width: number): Promise<string> {
    if (stopped || !videoSender) return Promise.resolve('');
    previewWidth = Math.max(16, Math.round(width));
    return new Promise((resolve) => {
      previewWanted?.resolve(lastPreview);
      const wanted = { resolve };
      previewWanted = wanted;
      // A page that does not repaint sends no frames: it gets the newest preview there is.
      setTimeout(() => {
        if (previewWanted !== wanted) return;
        previewWanted = null;
        resolve(lastPreview);
      }, PREVIEW_WAIT_MS);
    });
  }

  function toBase64(bytes: Uint8Array): string {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  /** Draws `frame` small now (it is closed right after) and encodes it in the background. */
  function takePreview(frame: VideoFrame, w: number, h: number): void {
    const wanted = previewWanted;
    previewWanted = null;
    previewFrom = { w, h };
    const pw = Math.min(w, previewWidth);
    const ph = Math.max(2, Math.round((h * pw) / w));
    const canvas = new OffscreenCanvas(pw, ph);
    const ctx = canvas.getContext('2d');
    if (!ctx) return wanted?.resolve(lastPreview);
    ctx.drawImage(frame, 0, 0, pw, ph);
    previewEncoding = true;
    void canvas
      .convertToBlob({ type: 'image/jpeg', quality: 0.6 })
      .then(async (blob) => {
        lastPreview = toBase64(new Uint8Array(await blob.arrayBuffer()));
        wanted?.resolve(lastPreview);
      })
      .catch(() => wanted?.resolve(lastPreview))
      .finally(() => {
        previewEncoding = false;
        const next = previewNext;
        previewNext = null;
        if (next && !stopped) takePreview(next.frame, next.w, next.h);
        next?.frame.close();
      });
  }

  async function pumpVideo(track: MediaStreamTrack, sender: Worker): Promise<void> {
    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 2 }).readable.getReader();
    // VideoFrame.timestamp of a tab-capture frame is its capture time on the machine's monotonic
    // clock (CLOCK_MONOTONIC, µs): sent as is, the egress maps it onto its own clock exactly.
    for (;;) {
      const { value: frame, done } = await reader.read();
      if (done || stopped) {
        frame?.close();
        break;
      }
      try {
        const format = frame.format ?? '';
        const w = frame.visibleRect?.width ?? frame.displayWidth;
        const h = frame.visibleRect?.height ?? frame.displayHeight;
        const lay = layoutOf(format, w, h);
        if (!lay) continue;
        const buf = frameBuffer(HEADER + lay.size);
        await frame.copyTo(new Uint8Array(buf, HEADER), { layout: lay.layout });
        const dv = new DataView(buf);
        dv.setUint8(0, 1);
        dv.setUint8(1, FORMAT_CODES[format] ?? 0);
        dv.setUint32(4, w, true);
        dv.setUint32(8, h, true);
        dv.setUint8(12, 1);
        dv.setFloat64(16, frame.timestamp, true);
        sender.postMessage(buf, [buf]);
        // The first frame always, and the first of every new size, so a page that never repaints
        // still has a preview of what is recorded: the viewport is fitted to the sharing bar just
        // after the start, and on a cold machine the first frame can already be the unfitted one.
        const resized = w !== previewFrom.w || h !== previewFrom.h;
        if (previewWanted || (resized && !previewEncoding)) takePreview(frame, w, h);
        else if (resized) {
          previewNext?.frame.close();
          previewNext = { frame: frame.clone(), w, h };
        }
      } finally {
        frame.close();
      }
    }
  }

  const ENCODED_FORMAT_H264 = 1;
  const FLAG_KEY = 1;
  const FLAG_REPEAT = 2;
  /** Frames waiting in the encoder before new ones are dropped (before encoding, never after). */
  const MAX_ENCODE_QUEUE = 3;
  /** Encoded bytes waiting in the socket before new frames are dropped (before encoding). */
  const MAX_ENCODED_BUFFERED_BYTES = 8 * 1024 * 1024;
  /** Repeats encoded at most per pacing tick (a timer that fired late catches up this far). */
  const MAX_CATCH_UP_SLOTS = 4;
  let keyframeRequested = false;
  let encodeKeyframeNow: (() => void) | null = null;
  const encodeStats = { dropped: 0, repeated: 0 };

  /**
   * Encodes the tab's frames with WebCodecs and sends one access unit per message. Tab capture
   * delivers a frame only when the page repaints: when none came for 1.5 frame intervals the last
   * picture is encoded again on the next slot of the frame grid, so a still page still gives a
   * constant-rate video that lasts as long as the recording. When the encoder or the socket falls
   * behind, frames are dropped before they are encoded — the encoder only ever references what it
   * encoded, so every encoded frame stays decodable.
   */
  async function pumpEncoded(track: MediaStreamTrack, opts: EgressPageEncodeOptions): Promise<void> {
    const frameUs = 1e6 / opts.framerate;
    let sinceKey = Infinity;
    let last: VideoFrame | null = null;
    // VideoFrame timestamps are on the monotonic clock; performance.now() runs at the same rate.
    // The newest offset seen is the closest to the true one (delivery only ever adds latency).
    let monoOffsetUs = -Infinity;
    /** Timestamps of the repeats in the encoder (their chunks are flagged as such). */
    const repeats = new Set<number>();
    const encoder = new VideoEncoder({
      output: (chunk) => {
        const buf = new ArrayBuffer(HEADER + chunk.byteLength);
        chunk.copyTo(new Uint8Array(buf, HEADER));
        const dv = new DataView(buf);
        dv.setUint8(0, 3);
        dv.setUint8(1, ENCODED_FORMAT_H264);
        dv.setUint8(2, (chunk.type === 'key' ? FLAG_KEY : 0) | (repeats.has(chunk.timestamp) ? FLAG_REPEAT : 0));
        repeats.delete(chunk.timestamp);
        dv.setUint32(4, opts.width, true);
        dv.setUint32(8, opts.height, true);
        dv.setUint8(12, 1);
        dv.setFloat64(16, chunk.timestamp, true);
        send(buf);
      },
      error: (e) => report(e),
    });
    encoder.configure({
      codec: opts.codec,
      width: opts.width,
      height: opts.height,
      bitrate: opts.bitrate,
      framerate: opts.framerate,
      hardwareAcceleration: 'prefer-software',
      latencyMode: 'realtime',
      avc: { format: 'annexb' },
    } as VideoEncoderConfig);

    // The frame grid: slot k is at origin + k frame intervals (origin: the first frame's time). Each
    // slot gets at most one frame, encoded or dropped.
    let origin = Number.NaN;
    let lastSlot = -Infinity;
    const slotOf = (ts: number): number => Math.round((ts - origin) / frameUs);
    const slotTs = (k: number): number => origin + k * frameUs;

    /** Encodes `frame` stamped `ts` into slot `slot`, or counts it dropped (the encoder or socket is behind). */
    const encode = (frame: VideoFrame, ts: number, slot: number, repeat: boolean): void => {
      if (encoder.state !== 'configured') return;
      lastSlot = slot;
      if (encoder.encodeQueueSize >= MAX_ENCODE_QUEUE || (socket?.bufferedAmount ?? 0) > MAX_ENCODED_BUFFERED_BYTES) {
        encodeStats.dropped++;
        return;
      }
      const keyFrame = keyframeRequested || sinceKey + 1 >= opts.keyFrameInterval;
      const f = ts === frame.timestamp ? frame : new VideoFrame(frame, { timestamp: ts });
      try {
        if (repeat) {
          repeats.add(ts);
          encodeStats.repeated++;
        }
        encoder.encode(f, { keyFrame });
      } finally {
        if (f !== frame) f.close();
      }
      if (keyFrame) {
        keyframeRequested = false;
        sinceKey = 0;
      } else sinceKey++;
    };

    encodeKeyframeNow = () => {
      if (stopped || !last || !Number.isFinite(monoOffsetUs) || Number.isNaN(origin)) return;
      // The newest picture into the first free slot at or after now (so it is not taken for media
      // from before the start or resume that asked for it).
      const nowMono = performance.now() * 1000 + monoOffsetUs;
      const k = Math.max(lastSlot + 1, Math.ceil((nowMono - origin) / frameUs));
      encode(last, slotTs(k), k, false);
    };
    const pace = setInterval(() => {
      if (stopped || !last || !Number.isFinite(monoOffsetUs) || Number.isNaN(origin)) return;
      const nowMono = performance.now() * 1000 + monoOffsetUs;
      if (nowMono - slotTs(lastSlot) < 1.5 * frameUs) return;
      // Every slot since the last frame, up to half a frame ago, gets the last picture (a late timer
      // catches up a few slots; further behind, the page was starved and those slots are lost).
      for (let n = 0; n < MAX_CATCH_UP_SLOTS && slotTs(lastSlot + 1) <= nowMono - frameUs / 2; n++) encode(last, slotTs(lastSlot + 1), lastSlot + 1, true);
      const behind = Math.floor((nowMono - origin) / frameUs) - 1;
      if (behind > lastSlot) {
        encodeStats.dropped += behind - lastSlot;
        lastSlot = behind;
      }
    }, frameUs / 2000);

    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 2 }).readable.getReader();
    try {
      for (;;) {
        const { value: frame, done } = await reader.read();
        if (done || stopped) {
          frame?.close();
          break;
        }
        monoOffsetUs = Math.max(monoOffsetUs, frame.timestamp - performance.now() * 1000);
        last?.close();
        last = frame;
        if (Number.isNaN(origin)) origin = frame.timestamp;
        // One frame per slot: a frame for a slot already filled (by a repeat stamped just before it
        // came, or a burst) waits as the newest picture.
        const k = slotOf(frame.timestamp);
        if (k > lastSlot) encode(frame, frame.timestamp, k, false);
      }
    } finally {
      clearInterval(pace);
      encodeKeyframeNow = null;
      last?.close();
      last = null;
      if (encoder.state === 'configured') await encoder.flush().catch(() => undefined);
      if (encoder.state !== 'closed') encoder.close();
    }
  }

  /**
   * Audio: the tab's audio track read as AudioData through MediaStreamTrackProcessor. Each chunk
   * carries its capture time, so audio stays on the video's timeline by construction. (An AudioWorklet
   * reading the same track through an AudioContext drifted ~30 ms per minute against the video on
   * Chromium 156: the context's clock and buffering are not the capture's.)
   */
  async function pumpAudio(track: MediaStreamTrack, latencyUs: number): Promise<void> {
    // The tab's audio is stamped with the time it is heard, the output device's latency after it is
    // rendered (a beep's stamp matched the page's own getOutputTimestamp() within 1 ms), and a
    // <video> is presented for that time. WebRTC tracks come out ahead of their sound by about the
    // output latency, as if Chromium's lip sync left it out (a room template, two publishers: medians
    // −2 and +5 ms with the latency taken off, 23–33 ms further off without): for such a page
    // (opts.audioAtRenderTime) the latency is asked of the browser and taken off (latencyUs; 0 otherwise).
    const origin = performance.timeOrigin * 1000 - latencyUs;
    const reader = new MediaStreamTrackProcessor({ track } as unknown as { track: MediaStreamTrack }).readable.getReader() as unknown as ReadableStreamDefaultReader<AudioData>;
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done || stopped) {
        chunk?.close();
        break;
      }
      try {
        const frames = chunk.numberOfFrames;
        const channels = Math.min(2, chunk.numberOfChannels);
        const buf = new ArrayBuffer(HEADER + frames * 2 * 4);
        const out = new Float32Array(buf, HEADER);
        const plane = new Float32Array(frames);
        for (let c = 0; c < 2; c++) {
          // Mono sources fill both channels.
          chunk.copyTo(plane, { planeIndex: Math.min(c, channels - 1), format: 'f32-planar' });
          for (let i = 0; i < frames; i++) out[i * 2 + c] = plane[i] as number;
        }
        const dv = new DataView(buf);
        dv.setUint8(0, 2);
        dv.setUint8(1, 1);
        dv.setUint16(2, 2, true);
        dv.setUint32(4, chunk.sampleRate, true);
        dv.setUint32(8, frames, true);
        // AudioData.timestamp is on this page's performance clock.
        dv.setFloat64(16, origin + chunk.timestamp, true);
        send(buf);
      } finally {
        chunk.close();
      }
    }
  }

  /** The default output device's latency as the browser reports it (base + output), in µs. */
  async function outputLatencyUs(): Promise<number> {
    const probe = new AudioContext();
    try {
      await probe.resume();
      await new Promise((r) => setTimeout(r, 200));
      return ((probe.baseLatency || 0) + (probe.outputLatency || 0)) * 1e6;
    } finally {
      void probe.close();
    }
  }

  async function start(opts: EgressCaptureOptions): Promise<string> {
    stopped = false;
    lastPreview = '';
    previewFrom = { w: 0, h: 0 };
    previewNext?.frame.close();
    previewNext = null;
    // Probed while the capture starts (it takes ~200 ms), so it adds nothing to the start time.
    const latencyUs = opts.audio && opts.audioAtRenderTime ? outputLatencyUs() : Promise.resolve(0);
    socket = new WebSocket(opts.wsUrl);
    socket.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      (socket as WebSocket).onopen = () => resolve();
      (socket as WebSocket).onerror = () => reject(new Error('capture socket failed to open'));
    });
    socket.onclose = () => stop();
    socket.onmessage = (e: MessageEvent<unknown>) => {
      if (typeof e.data === 'string' && e.data.includes('"keyframe"')) {
        keyframeRequested = true;
        // Answered at once with the newest picture rather than at the next repaint.
        encodeKeyframeNow?.();
      }
    };
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
    if (opts.video && vt && opts.encode) {
      const enc = opts.encode;
      void pumpEncoded(vt, enc).catch((e: unknown) => report(e));
      statsTimer = setInterval(sendStats, 1000);
    } else if (opts.video && vt) {
      videoSender = await openVideoSender(opts.wsUrl);
      void pumpVideo(vt, videoSender).catch((e: unknown) => report(e));
    } else vt?.stop();
    // Read before the audio reader exists, so no chunk waits (or is dropped) while it is probed.
    const audioLatencyUs = await latencyUs;
    if (opts.audio) {
      if (!at) throw new Error('tab audio capture returned no track');
      void pumpAudio(at, audioLatencyUs).catch((e: unknown) => report(e));
    }
    const settings = vt?.getSettings() ?? {};
    socket.send(JSON.stringify({ type: 'started', atUs: nowUs(), width: settings.width ?? 0, height: settings.height ?? 0 }));
    // The latency goes into the log line: it decides the recording's A/V alignment.
    return JSON.stringify({ ok: true, width: settings.width ?? 0, height: settings.height ?? 0, audioLatencyMs: Math.round(audioLatencyUs / 100) / 10 });
  }

  function report(e: unknown): void {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'error', message }));
  }

  let statsTimer: ReturnType<typeof setInterval> | null = null;

  function sendStats(): void {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'stats', dropped: encodeStats.dropped, repeated: encodeStats.repeated }));
  }

  function stop(): void {
    if (stopped) return;
    stopped = true;
    if (statsTimer) {
      clearInterval(statsTimer);
      statsTimer = null;
      sendStats();
    }
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    videoSender?.postMessage(null);
    videoSender = null;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'ended', atUs: nowUs() }));
      socket.close();
    }
    socket = null;
  }

  g.__egressCapture = { start, stop, snapshot };
})();
