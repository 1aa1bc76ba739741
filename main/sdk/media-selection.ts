import { ParticipantKind, RoomEvent, TrackKind, TrackSource, type RemoteParticipant, type RemoteTrack, type RemoteTrackPublication } from '@livekit/rtc-node';
import { errNotFound } from '../contracts/errors.js';
import type { AudioRouteMatch, MediaSourcePlan, ParticipantKindName } from '../contracts/pipeline.js';
import { logger } from '../log.js';
import type { AudioMixer, AudioRoute } from './audio-mixer.js';
import type { RoomSource, TrackReader } from './room-source.js';
import type { TrackSlots } from './track-slots.js';
import { onTrackOrParticipant, REQUIRED_WAIT_MS, waitFor, type TrackSelection } from './track-selection.js';

/**
 * What a v2 media source records, for the whole session:
 * - video: the track `video_track_id`, or the camera (prefer_screen_share: the screen share, with
 *   no fallback) of `participant_video.identity`, followed through unpublish / republish; black
 *   while there is none;
 * - audio: every audio track a route matches (first matching route wins: by track id, identity or
 *   participant kind), on that route's channel in the shared mixer (audio-mixer.ts, the one the
 *   audio-only room composite uses); with capture_all every audio track on both channels.
 * Named participants (participant_video, identity routes) and named tracks (video_track_id,
 * track-id routes) must appear within one shared 30 s deadline, else the original's
 * `participant … not found` / `track … not found`; nothing is recorded before they have. The
 * source ends with the room (the controller sees the disconnect), not with a participant leaving.
 */

const log = logger('sdk-media');

/** rtc-node's participant kinds (its own numbering, not livekit.ParticipantInfo.Kind's). */
const RTC_KINDS: Readonly<Record<ParticipantKindName, ParticipantKind>> = {
  standard: ParticipantKind.STANDARD,
  ingress: ParticipantKind.INGRESS,
  egress: ParticipantKind.EGRESS,
  sip: ParticipantKind.SIP,
  agent: ParticipantKind.AGENT,
  connector: ParticipantKind.CONNECTOR,
  bridge: ParticipantKind.BRIDGE,
};

function routeMatches(m: AudioRouteMatch, pub: RemoteTrackPublication, p: RemoteParticipant): boolean {
  if ('trackId' in m) return pub.sid === m.trackId;
  if ('identity' in m) return p.identity === m.identity;
  if ('participantKind' in m) return (p.kind ?? ParticipantKind.STANDARD) === RTC_KINDS[m.participantKind];
  return false;
}

/** Participants and tracks the request names: they must exist before anything is recorded. */
export function requiredOf(plan: MediaSourcePlan): { identities: string[]; trackIds: string[] } {
  const identities = new Set<string>();
  const trackIds = new Set<string>();
  const v = plan.video;
  if (v && 'identity' in v && v.identity !== '') identities.add(v.identity);
  if (v && 'trackId' in v && v.trackId !== '') trackIds.add(v.trackId);
  if (plan.audio && !plan.audio.captureAll) {
    for (const r of plan.audio.routes) {
      if ('identity' in r.match) identities.add(r.match.identity);
      if ('trackId' in r.match) trackIds.add(r.match.trackId);
    }
  }
  return { identities: [...identities], trackIds: [...trackIds] };
}

export class MediaSelection implements TrackSelection {
  readonly #offs: (() => void)[] = [];
  readonly #audio = new Map<string, TrackReader>();
  #ready = false;
  #closed = false;
  /** A media source names no single publisher: `{publisher_identity}` stays as written. */
  readonly publisherIdentity = null;

  constructor(
    private readonly source: RoomSource,
    private readonly slots: TrackSlots,
    private readonly mixer: AudioMixer | null,
    private readonly plan: MediaSourcePlan,
  ) {}

  #on(event: RoomEvent, fn: (...args: never[]) => void): void {
    const room = this.source.room as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    room.on(event, fn);
    this.#offs.push(() => room.off(event, fn));
  }

  /** The channel of an audio track, or null when it is not recorded. */
  #audioRoute(pub: RemoteTrackPublication, p: RemoteParticipant): AudioRoute | null {
    const a = this.plan.audio;
    if (!a || !this.mixer) return null;
    if (a.captureAll) return 'both';
    for (const r of a.routes) if (routeMatches(r.match, pub, p)) return r.channel;
    return null;
  }

  #wantsVideo(pub: RemoteTrackPublication, p: RemoteParticipant): boolean {
    const v = this.plan.video;
    if (!v || pub.kind !== TrackKind.KIND_VIDEO) return false;
    if ('trackId' in v) return v.trackId !== '' && pub.sid === v.trackId;
    if (v.identity === '' || p.identity !== v.identity) return false;
    return pub.source === (v.screenShare ? TrackSource.SOURCE_SCREENSHARE : TrackSource.SOURCE_CAMERA);
  }

  #wants(pub: RemoteTrackPublication, p: RemoteParticipant): boolean {
    return pub.kind === TrackKind.KIND_AUDIO ? this.#audioRoute(pub, p) !== null : this.#wantsVideo(pub, p);
  }

  #take(track: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant): void {
    const sid = pub.sid ?? '';
    if (this.#closed || !this.#ready || sid === '') return;
    if (pub.kind === TrackKind.KIND_AUDIO) {
      const route = this.#audioRoute(pub, p);
      const mixer = this.mixer;
      if (route === null || !mixer || this.#audio.has(sid)) return;
      mixer.addInput(sid, route);
      this.#audio.set(sid, this.source.readAudio(track, (c) => mixer.push(sid, c)));
      log.info(`mixing audio track ${sid} of ${p.identity} (${route})`);
    } else if (this.#wantsVideo(pub, p) && !this.slots.has(sid) && this.slots.attach(track)) {
      log.info(`recording video track ${sid} of ${p.identity}`);
    }
  }

  #drop(pub: RemoteTrackPublication): void {
    const sid = pub.sid;
    if (!sid) return;
    const reader = this.#audio.get(sid);
    if (reader) {
      this.#audio.delete(sid);
      this.mixer?.removeInput(sid);
      void reader.cancel();
      log.info(`audio track ${sid} ended`);
    }
    if (this.slots.detach(sid) === 'video') {
      log.info(`video track ${sid} ended`);
      // Another matching video track may already be subscribed (a second camera).
      for (const p of this.source.room.remoteParticipants.values()) {
        for (const other of p.trackPublications.values()) {
          if (other.sid !== sid && other.track && this.#wantsVideo(other, p)) this.#take(other.track, other, p);
        }
      }
    }
  }

  async begin(): Promise<void> {
    const room = this.source.room;
    // Everything is wired before looking, so nothing published meanwhile is missed.
    this.#on(RoomEvent.TrackPublished, (pub: RemoteTrackPublication, p: RemoteParticipant) => {
      if (this.#ready && this.#wants(pub, p)) pub.setSubscribed(true);
    });
    this.#on(RoomEvent.TrackSubscribed, (track: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant) => this.#take(track, pub, p));
    this.#on(RoomEvent.TrackUnpublished, (pub: RemoteTrackPublication) => this.#drop(pub));
    this.#on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication) => this.#drop(pub));
    this.#on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      for (const pub of p.trackPublications.values()) this.#drop(pub);
    });

    // One deadline for all of them, participants first (as the original waits).
    const deadline = Date.now() + REQUIRED_WAIT_MS;
    const { identities, trackIds } = requiredOf(this.plan);
    for (const identity of identities) {
      const found = await waitFor(() => [...room.remoteParticipants.values()].find((p) => p.identity === identity), (check) => onTrackOrParticipant(room, check), Math.max(0, deadline - Date.now()));
      if (this.#closed) return;
      if (!found) throw errNotFound(`participant ${identity} not found`);
    }
    const published = (sid: string): true | undefined => ([...room.remoteParticipants.values()].some((p) => p.trackPublications.has(sid)) ? true : undefined);
    for (const sid of trackIds) {
      const found = await waitFor(() => published(sid), (check) => onTrackOrParticipant(room, check), Math.max(0, deadline - Date.now()));
      if (this.#closed) return;
      if (!found) throw errNotFound(`track ${sid} not found`);
    }

    this.#ready = true;
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.trackPublications.values()) {
        if (!this.#wants(pub, p)) continue;
        if (pub.track) this.#take(pub.track, pub, p);
        else pub.setSubscribed(true);
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    for (const [sid, reader] of [...this.#audio]) {
      this.#audio.delete(sid);
      this.mixer?.removeInput(sid);
      void reader.cancel();
    }
  }
}
