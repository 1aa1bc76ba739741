/*
 * Track egress without transcoding: the page joins the room as the recorder, subscribes to ONE
 * track and hands its ENCODED frames (as the publisher sent them, after the jitter buffer) to the
 * egress over a loopback WebSocket, from an RTCRtpScriptTransform on the track's receiver (read in
 * a worker; encoded insertable streams where the browser has no script transform). Only keyframes
 * go on to the decoder (see the worker). A transform set once livekit-client hands out the track is
 * too late (Chrome then bypasses it for good), hence the peer-connection hook below.
 *   <base>index.html?url=<ws url>&token=<recorder JWT>&track=<track sid>&ingest=<ws://127.0.0.1:…>
 * Messages to the egress (see main/sdk/encoded-track.ts):
 *  - binary, one per frame: a 24-byte little-endian header (version 1, kind 0 video / 1 audio, flags
 *    bit 0 keyframe, payload type, RTP timestamp u32, arrival µs f64 on the wall clock, width u16,
 *    height u16, reserved u32) then the payload;
 *  - text JSON: {"type":"track","mime":…} once the first frame tells the codec;
 *    {"type":"ended","reason":…} when the track or the connection is gone; {"type":"error",…}.
 * The worker opens its own socket (frames never cross to the page's thread). On it the egress sends
 * {"type":"keyframe"} when it lost a frame's place in the chain (see passthrough-writer.ts): the
 * worker asks the publisher for a keyframe (at most every 500 ms).
 */
import { LogLevel, Room, RoomEvent, DisconnectReason, setLogLevel, type RemoteParticipant, type RemoteTrack, type RemoteTrackPublication } from 'livekit-client';

setLogLevel(LogLevel.warn);

const params = new URLSearchParams(window.location.search);
const wsUrl = params.get('url') ?? '';
const token = params.get('token') ?? '';
const trackSid = params.get('track') ?? '';
const ingest = params.get('ingest') ?? '';

interface TransformOptions {
  readonly ingest: string;
  readonly kind: 'video' | 'audio';
  /**
   * Test hook (the egress passes EGRESS_TEST_TRACK_FAULTS): video frames handed to the egress out of
   * order, as a retransmission completes them — every `reorder[0]`-th delta frame after
   * `reorder[1]` more frames, and frame number `late[0]` after `late[1]` more.
   */
  readonly reorder?: [number, number];
  readonly late?: [number, number];
}

/** Runs in the reading worker (serialised with toString: it must not close over anything). */
function workerMain(): void {
  const scope = self as unknown as {
    onrtctransform: ((ev: { transformer: { readable: ReadableStream; writable?: WritableStream; options: TransformOptions; sendKeyFrameRequest?: () => Promise<void>; decoder?: WritableStreamDefaultWriter } }) => void) | null;
  };
  (self as unknown as { onmessage: (e: MessageEvent) => void }).onmessage = (e: MessageEvent) => {
    const d = e.data as { readable: ReadableStream; writable: WritableStream; options: TransformOptions };
    const w = d.writable.getWriter();
    scope.onrtctransform?.({ transformer: { readable: d.readable, options: d.options, decoder: w } });
  };
  scope.onrtctransform = (ev) => {
    const t = ev.transformer;
    // The receiver's own decoder: the legacy path hands its writer over, a script transform has it
    // as `writable`.
    const decoder = t.decoder ?? t.writable?.getWriter();
    const video = t.options.kind === 'video';
    const ws = new WebSocket(t.options.ingest + (video ? '?kind=video' : '?kind=audio'));
    ws.binaryType = 'arraybuffer';
    const queued: ArrayBuffer[] = [];
    ws.onopen = () => {
      for (const b of queued.splice(0)) ws.send(b);
    };
    let sentMime = false;
    let keyframes = 0;
    let lastKeyRequest = 0;
    const requestKey = (): void => {
      const now = performance.now();
      if (!video || !t.sendKeyFrameRequest || now - lastKeyRequest < 500) return;
      lastKeyRequest = now;
      t.sendKeyFrameRequest().catch(() => undefined);
    };
    requestKey();
    ws.onmessage = (m: MessageEvent) => {
      if (typeof m.data !== 'string') return;
      try {
        if ((JSON.parse(m.data) as { type?: string }).type === 'keyframe') requestKey();
      } catch {
        // Not ours: ignored.
      }
    };
    const send = (b: ArrayBuffer | string): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(b);
      else if (ws.readyState === WebSocket.CONNECTING && typeof b !== 'string') queued.push(b);
    };
    // The test hook's held-back frames: sent once `after` frames have gone.
    let frameNo = 0;
    const held: { after: number; msg: ArrayBuffer }[] = [];
    const holdBack = (msg: ArrayBuffer, key: boolean): boolean => {
      frameNo++;
      const { reorder, late } = t.options;
      let by = 0;
      if (reorder && !key && frameNo % reorder[0] === 0) by = reorder[1];
      if (late && frameNo === late[0]) by = late[1];
      for (const h of held.filter((x) => x.after < frameNo)) {
        held.splice(held.indexOf(h), 1);
        send(h.msg);
      }
      if (by > 0) held.push({ after: frameNo + by, msg });
      return by > 0;
    };
    void t.readable.pipeTo(
      new WritableStream({
        write(frame: { data: ArrayBuffer; timestamp: number; type?: string; getMetadata(): Record<string, unknown> }) {
          const md = frame.getMetadata();
          const key = video && frame.type === 'key';
          if (key) keyframes++;
          else if (video && keyframes === 0) requestKey();
          if (!sentMime && typeof md['mimeType'] === 'string') {
            sentMime = true;
            if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'track', mime: md['mimeType'] }));
            else ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'track', mime: md['mimeType'] })), { once: true });
          }
          const data = new Uint8Array(frame.data);
          const out = new ArrayBuffer(24 + data.byteLength);
          const v = new DataView(out);
          v.setUint8(0, 1);
          v.setUint8(1, video ? 0 : 1);
          v.setUint8(2, key ? 1 : 0);
          v.setUint8(3, Number(md['payloadType'] ?? 0) & 0xff);
          v.setUint32(4, Number(md['rtpTimestamp'] ?? frame.timestamp) >>> 0, true);
          v.setFloat64(8, (performance.timeOrigin + performance.now()) * 1000, true);
          v.setUint16(16, Number(md['width'] ?? 0), true);
          v.setUint16(18, Number(md['height'] ?? 0), true);
          new Uint8Array(out, 24).set(data);
          if (!video || !holdBack(out, key)) send(out);
          // Keyframes (only) go on to the decoder: a receiver whose decoder never sees a frame asks
          // the publisher for a keyframe every few hundred ms; one decoded now and then keeps it
          // quiet. Chrome still asks for one every 3 s (nothing decodable in between): kept, as the
          // recovery point for a frame lost for good, which nothing here can see (the egress asks
          // for a keyframe at once only when a frame comes too late to be put in its place).
          if (key && decoder) void decoder.write(frame).catch(() => undefined);
        },
      }),
    ).catch(() => undefined);
  };
}

const control = new WebSocket(ingest + '?kind=control');
const controlOpen = new Promise<void>((resolve) => control.addEventListener('open', () => resolve(), { once: true }));
function report(msg: Record<string, unknown>): void {
  void controlOpen.then(() => control.send(JSON.stringify(msg)));
}

function pair(name: string): [number, number] | undefined {
  const m = /^(\d+):(\d+)$/.exec(params.get(name) ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}
const transformOptions = (kind: string): TransformOptions => ({ ingest, kind: kind === 'audio' ? 'audio' : 'video', reorder: pair('reorder'), late: pair('late') });

const workerUrl = URL.createObjectURL(new Blob([`(${workerMain.toString()})()`], { type: 'text/javascript' }));
let taken = false;

/**
 * Chrome only routes frames through a receiver's transform when it is set before the first frame
 * arrives: set it in the peer connection's own `track` event (before livekit-client sees the
 * track). LiveKit names the remote MediaStream `<participant sid>|<track sid>`.
 */
function attachTransform(receiver: RTCRtpReceiver, kind: string): void {
  if (taken) return;
  taken = true;
  const worker = new Worker(workerUrl);
  worker.onerror = (e) => report({ type: 'error', message: `worker: ${e.message}` });
  if (ScriptTransform) {
    // The script transform can ask the publisher for a keyframe (sendKeyFrameRequest).
    receiver.transform = new ScriptTransform(worker, transformOptions(kind));
    report({ type: 'subscribed', kind, via: 'script transform' });
    return;
  }
  const encoded = receiver as RTCRtpReceiver & { createEncodedStreams?: () => { readable: ReadableStream; writable: WritableStream } };
  try {
    if (!encoded.createEncodedStreams) throw new Error('encoded insertable streams are not available');
    const { readable, writable } = encoded.createEncodedStreams();
    worker.postMessage({ readable, writable, options: transformOptions(kind) }, [readable as unknown as Transferable, writable as unknown as Transferable]);
    report({ type: 'subscribed', kind, via: 'encoded streams' });
  } catch (err) {
    report({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
}

const ScriptTransform = (window as { RTCRtpScriptTransform?: typeof RTCRtpScriptTransform }).RTCRtpScriptTransform;
/**
 * The peer connection's encoded-streams flag, for both paths: without it Chrome hands the frames that
 * arrive before the script transform is ready straight to the decoder, and then bypasses the
 * transform for good (measured: 90 frames decoded, none read); with it they wait for the transform.
 */
const withFlag = (config?: RTCConfiguration): RTCConfiguration => ({ ...config, encodedInsertableStreams: true }) as RTCConfiguration;

const NativePeerConnection = window.RTCPeerConnection;
class TransformingPeerConnection extends NativePeerConnection {
  constructor(config?: RTCConfiguration) {
    super(withFlag(config));
    this.addEventListener('track', (ev: RTCTrackEvent) => {
      const ids = ev.streams.map((st) => st.id);
      if (ids.some((id) => id.split('|').includes(trackSid) || id === trackSid)) attachTransform(ev.receiver, ev.track.kind);
    });
  }

  override setConfiguration(config?: RTCConfiguration): void {
    super.setConfiguration(withFlag(config));
  }
}
window.RTCPeerConnection = TransformingPeerConnection;

async function main(): Promise<void> {
  const room = new Room({ adaptiveStream: false, dynacast: false });
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, pub: RemoteTrackPublication) => {
    if (pub.trackSid === trackSid && !taken && track.receiver) attachTransform(track.receiver, track.kind);
  });
  const ended = (reason: string) => report({ type: 'ended', reason });
  room.on(RoomEvent.TrackUnpublished, (pub: RemoteTrackPublication) => {
    if (pub.trackSid === trackSid) ended('unpublished');
  });
  room.on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication) => {
    if (pub.trackSid === trackSid) ended('unsubscribed');
  });
  room.on(RoomEvent.TrackMuted, (pub) => {
    if (pub.trackSid === trackSid) report({ type: 'muted', muted: true });
  });
  room.on(RoomEvent.TrackUnmuted, (pub) => {
    if (pub.trackSid === trackSid) report({ type: 'muted', muted: false });
  });
  room.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
    if (p.trackPublications.has(trackSid)) ended('participant left');
  });
  room.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => report({ type: 'disconnected', reason: reason === undefined ? 'UNKNOWN' : DisconnectReason[reason] }));
  await room.connect(wsUrl, token, { autoSubscribe: false });
  for (const p of room.remoteParticipants.values()) {
    const pub = p.trackPublications.get(trackSid);
    if (pub) {
      pub.setSubscribed(true);
      return;
    }
  }
  room.on(RoomEvent.TrackPublished, (pub: RemoteTrackPublication) => {
    if (pub.trackSid === trackSid) pub.setSubscribed(true);
  });
}

main().catch((err: unknown) => report({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
