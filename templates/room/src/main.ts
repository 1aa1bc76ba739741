/*
 * Default room-composite template (plain DOM + livekit-client). Loaded by the egress as
 *   <base>?layout=<layout>&url=<ws url>&token=<recorder JWT>
 * Contract (same as LiveKit Egress's template-default + @livekit/egress-sdk):
 *  - console.log('START_RECORDING') once media is flowing (see startWhenReady),
 *    console.log('END_RECORDING') when the room disconnects us (room closed / recorder removed);
 *  - errors are rendered in a div.error whose text the egress reports as `template error: <text>`;
 *  - the recorder is hidden and subscribe-only: nothing local is rendered or published;
 *  - layout changes arrive as the local participant's metadata {"layout": "..."} (UpdateLayout)
 *    and are applied live.
 * Geometry and tile order live in geometry.ts (pure, shared with the tests).
 */
import {
  LogLevel,
  ParticipantEvent,
  Room,
  RoomEvent,
  Track,
  VideoQuality,
  setLogLevel,
  type Participant,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
} from 'livekit-client';
import { layoutRects, tileOrder, type TileSource, type TrackOrderKey } from './geometry.js';
import { holdSteadyPlayout, installLipSync } from './lipsync.js';
import { watchMediaDuringSignalReconnect } from './media-watch.js';

const FRAME_DECODE_TIMEOUT_MS = 5000;
const AUDIO_ONLY_DELAY_MS = 500;
const POLL_MS = 100;

// The console carries the recording signals; keep livekit-client's chatter out of it.
setLogLevel(LogLevel.warn);

const params = new URLSearchParams(window.location.search);
let layout = params.get('layout') ?? '';
const rootEl = document.getElementById('root') ?? document.body;

interface VideoTile extends TrackOrderKey {
  readonly tile: HTMLDivElement;
  readonly video: HTMLVideoElement;
  readonly track: RemoteTrack;
}

const tiles = new Map<string, VideoTile>();
const audioEls = new Map<string, HTMLMediaElement>();
const stageEl = document.createElement('div');
stageEl.className = 'room';
const audioEl = document.createElement('div');
audioEl.className = 'audio';
/** Sticky active speaker for the speaker layouts (see geometry.ts). */
let speaker: string | undefined;

function showError(message: string): void {
  const div = document.createElement('div');
  div.className = 'error';
  div.textContent = message;
  rootEl.replaceChildren(div);
}

function sourceOf(pub: RemoteTrackPublication): TileSource | undefined {
  switch (pub.source) {
    case Track.Source.Camera:
      return 'camera';
    case Track.Source.ScreenShare:
      return 'screen_share';
    case Track.Source.Unknown:
      return 'unknown';
    default:
      return undefined;
  }
}

function joinedAtSeconds(p: Participant): number {
  const t = p.joinedAt?.getTime();
  return t === undefined || Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

function fitVideo(t: VideoTile): void {
  const portrait = t.video.videoHeight > t.video.videoWidth;
  t.video.classList.toggle('contain', t.source === 'screen_share' || portrait);
}

function render(): void {
  const width = window.innerWidth;
  const height = window.innerHeight;
  const all = [...tiles.values()];
  const ordered = tileOrder(all, layout, speaker);
  const result = layoutRects(layout, ordered.length, width, height, all.some((t) => t.source === 'screen_share'));
  document.body.classList.toggle('light', result.light);
  stageEl.dataset['layout'] = result.kind;
  const shown = new Set<VideoTile>();
  ordered.forEach((t, i) => {
    const r = result.tiles[i];
    if (!r) return;
    shown.add(t);
    const s = t.tile.style;
    s.left = `${r.x}px`;
    s.top = `${r.y}px`;
    s.width = `${r.w}px`;
    s.height = `${r.h}px`;
    s.display = '';
    t.tile.dataset['index'] = String(i);
  });
  for (const t of all) {
    if (!shown.has(t)) {
      t.tile.style.display = 'none';
      delete t.tile.dataset['index'];
    }
  }
}

function addTrack(track: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant): void {
  const sid = pub.trackSid;
  holdSteadyPlayout(track.receiver);
  if (track.kind === Track.Kind.Audio) {
    if (audioEls.has(sid)) return;
    const el = track.attach();
    audioEls.set(sid, el);
    audioEl.appendChild(el);
    return;
  }
  if (track.kind !== Track.Kind.Video) return;
  const source = sourceOf(pub);
  if (!source || tiles.has(sid)) return;
  pub.setVideoQuality(VideoQuality.HIGH);
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset['identity'] = p.identity;
  tile.dataset['source'] = source;
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  tile.appendChild(video);
  track.attach(video);
  const t: VideoTile = { tile, video, track, source, joinedAt: joinedAtSeconds(p), identity: p.identity, trackSid: sid };
  video.addEventListener('resize', () => fitVideo(t));
  fitVideo(t);
  tiles.set(sid, t);
  stageEl.appendChild(tile);
  render();
}

function removeTrack(sid: string): void {
  const a = audioEls.get(sid);
  if (a) {
    a.remove();
    audioEls.delete(sid);
  }
  const t = tiles.get(sid);
  if (t) {
    t.track.detach(t.video);
    t.tile.remove();
    tiles.delete(sid);
    render();
  }
}

function onMetadata(room: Room): void {
  const md = room.localParticipant.metadata;
  if (!md) return;
  let next: unknown;
  try {
    next = (JSON.parse(md) as { layout?: unknown }).layout;
  } catch {
    return;
  }
  if (typeof next === 'string' && next !== layout) {
    layout = next;
    render();
  }
}

/**
 * A participant with every microphone muted is not speaking, whatever the speaker list says: the
 * client keeps a participant in it until the server's next update, and a muted participant sends
 * no audio for the server to update from. Measured: a speaker muted at 7 s came back on stage at
 * 12 s, when the new speaker fell silent between two words, in 1 of 4 loaded runs.
 */
function mayBeSpeaking(p: Participant): boolean {
  return [...p.audioTrackPublications.values()].some((pub) => !pub.isMuted);
}

function onActiveSpeakers(speakers: Participant[]): void {
  const remote = speakers.filter((p) => !p.isLocal && mayBeSpeaking(p));
  if (remote.length === 0) return;
  if (speaker !== undefined && remote.some((p) => p.identity === speaker)) return;
  const next = remote.find((p) => [...tiles.values()].some((t) => t.identity === p.identity));
  if (next && next.identity !== speaker) {
    speaker = next.identity;
    render();
  }
}

/**
 * Logs START_RECORDING once (polling every 100 ms): when a subscribed video track has decoded a
 * frame; or, with no video publications but something subscribed, after 500 ms; or after 5 s with
 * anything subscribed. Never while nothing is subscribed.
 */
function startWhenReady(room: Room): void {
  const startTime = Date.now();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      let hasVideo = false;
      let hasSubscribed = false;
      let decoded = false;
      for (const p of room.remoteParticipants.values()) {
        for (const pub of p.trackPublications.values()) {
          if (pub.isSubscribed) hasSubscribed = true;
          if (pub.kind !== Track.Kind.Video) continue;
          hasVideo = true;
          const vt = pub.videoTrack;
          if (!decoded && pub.isSubscribed && vt) {
            const stats = await vt.getRTCStatsReport();
            stats?.forEach((s: { type?: string; framesDecoded?: number }) => {
              if (s.type === 'inbound-rtp' && (s.framesDecoded ?? 0) > 0) decoded = true;
            });
          }
        }
      }
      const elapsed = Date.now() - startTime;
      const start =
        decoded ||
        (!hasVideo && hasSubscribed && elapsed > AUDIO_ONLY_DELAY_MS) ||
        (hasSubscribed && elapsed > FRAME_DECODE_TIMEOUT_MS);
      if (start && room.state !== 'disconnected') {
        clearInterval(timer);
        console.log('START_RECORDING');
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, POLL_MS);
  room.once(RoomEvent.Disconnected, () => clearInterval(timer));
}

async function run(url: string, token: string): Promise<void> {
  rootEl.replaceChildren(stageEl, audioEl);
  installLipSync();
  const room = new Room({ adaptiveStream: false, dynacast: false });
  let connected = false;
  let stopMediaWatch: () => void = () => undefined;
  room
    .on(RoomEvent.TrackSubscribed, (track, pub, p) => addTrack(track, pub, p))
    .on(RoomEvent.TrackUnsubscribed, (_track, pub) => removeTrack(pub.trackSid))
    .on(RoomEvent.ParticipantDisconnected, (p) => {
      for (const pub of p.trackPublications.values()) removeTrack(pub.trackSid);
      if (speaker === p.identity) {
        speaker = undefined;
        render();
      }
    })
    .on(RoomEvent.ActiveSpeakersChanged, onActiveSpeakers)
    // The speaker muting hands the stage to whoever else is speaking, without waiting for the list.
    .on(RoomEvent.TrackMuted, (pub, p) => {
      if (pub.kind === Track.Kind.Audio && p.identity === speaker) onActiveSpeakers(room.activeSpeakers);
    })
    // The recorder notes when the room was lost and found again: if the client gives up, the
    // recording ends where the room was lost, not after the retries (whatever the page showed then).
    // A signal-only reconnect is told apart: media may still flow through it and is recorded; it
    // counts as the room lost (ROOM_RECONNECTING) once no media has arrived for half a second.
    .on(RoomEvent.SignalReconnecting, () => {
      console.log('ROOM_SIGNAL_RECONNECTING');
      stopMediaWatch();
      stopMediaWatch = watchMediaDuringSignalReconnect(room, () => console.log('ROOM_RECONNECTING'));
    })
    .on(RoomEvent.Reconnecting, () => {
      stopMediaWatch();
      console.log('ROOM_RECONNECTING');
    })
    .on(RoomEvent.Reconnected, () => {
      stopMediaWatch();
      console.log('ROOM_RECONNECTED');
    })
    .on(RoomEvent.Disconnected, () => {
      stopMediaWatch();
      for (const sid of [...tiles.keys(), ...audioEls.keys()]) removeTrack(sid);
      if (connected) console.log('END_RECORDING');
      connected = false;
    });
  room.localParticipant.on(ParticipantEvent.ParticipantMetadataChanged, () => onMetadata(room));
  window.addEventListener('resize', render);
  try {
    await room.connect(url, token, { autoSubscribe: true });
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
    return;
  }
  connected = true;
  onMetadata(room);
  void room.startAudio().catch(() => undefined);
  startWhenReady(room);
}

const url = params.get('url');
const token = params.get('token');
if (!url || !token) showError('missing required params url and token');
else void run(url, token);
