import { ParticipantKind, RoomEvent, TrackKind, TrackSource, type RemoteParticipant, type Room, type RemoteTrack, type RemoteTrackPublication } from '@livekit/rtc-node';
import { EgressError, errInvalidField, errNotFound } from '../contracts/errors.js';
import type { ParticipantSourcePlan, RoomAudioSourcePlan, TrackCompositeSourcePlan, TrackSourcePlan } from '../contracts/pipeline.js';
import type { AudioMixer, AudioRoute } from './audio-mixer.js';
import { logger } from '../log.js';
import type { RoomSource, TrackReader } from './room-source.js';
import type { TrackSlots } from './track-slots.js';

/**
 * Which tracks an SDK egress subscribes to and when it ends:
 * - participant: the identity's camera + microphone (or, with screen_share, every other source),
 *   followed through unpublish / republish for the whole session; ends when the participant leaves;
 * - track composite: the given track ids, each required within 30 s; later tracks are ignored; ends
 *   when all of its tracks are gone.
 * A named participant or track that does not appear within 30 s fails the egress with the
 * original's `participant … not found` / `track … not found` (404).
 */

const log = logger('sdk-tracks');

export const REQUIRED_WAIT_MS = 30_000;

export interface SelectionEvents {
  /** The source ended normally (participant left, all tracks gone). */
  readonly onSourceEnded: () => void;
  /** A selection error (not found, wrong kind). */
  readonly onError: (err: Error) => void;
}

export interface TrackSelection {
  /** Subscribes what exists now and keeps following the room. Rejects on a not-found wait. */
  begin(): Promise<void>;
  /** Identity of the recorded publisher once known ({publisher_identity}). */
  readonly publisherIdentity: string | null;
  /** Other file-name placeholders known once the track is (track egress). */
  readonly names?: ReadonlyMap<string, string>;
  close(): void;
}

export function waitFor<T>(find: () => T | undefined, subscribe: (check: () => void) => () => void, timeoutMs: number): Promise<T | undefined> {
  const now = find();
  if (now !== undefined) return Promise.resolve(now);
  return new Promise((resolve) => {
    let unsubscribe = (): void => undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      resolve(undefined);
    }, timeoutMs);
    unsubscribe = subscribe(() => {
      const v = find();
      if (v === undefined) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(v);
    });
  });
}

const SCREEN_SOURCES = new Set([TrackSource.SOURCE_SCREENSHARE, TrackSource.SOURCE_SCREENSHARE_AUDIO, TrackSource.SOURCE_UNKNOWN]);
const CAMERA_SOURCES = new Set([TrackSource.SOURCE_CAMERA, TrackSource.SOURCE_MICROPHONE]);

export class ParticipantSelection implements TrackSelection {
  readonly #offs: (() => void)[] = [];
  #closed = false;
  publisherIdentity: string | null = null;

  constructor(
    private readonly source: RoomSource,
    private readonly slots: TrackSlots,
    private readonly plan: ParticipantSourcePlan,
    private readonly events: SelectionEvents,
  ) {}

  #matches(pub: RemoteTrackPublication): boolean {
    const s = pub.source ?? TrackSource.SOURCE_UNKNOWN;
    return this.plan.screenShare ? SCREEN_SOURCES.has(s) : CAMERA_SOURCES.has(s);
  }

  #on<E extends RoomEvent>(event: E, fn: (...args: never[]) => void): void {
    const room = this.source.room as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    room.on(event, fn);
    this.#offs.push(() => room.off(event, fn));
  }

  async begin(): Promise<void> {
    const room = this.source.room;
    const identity = this.plan.identity;
    const mine = (p: RemoteParticipant): boolean => p.identity === identity;
    // Everything is wired before looking, so nothing published meanwhile is missed.
    this.#on(RoomEvent.TrackPublished, (pub: RemoteTrackPublication, p: RemoteParticipant) => {
      if (mine(p) && this.#matches(pub)) pub.setSubscribed(true);
    });
    this.#on(RoomEvent.TrackSubscribed, (track: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant) => {
      if (mine(p) && this.#matches(pub)) this.#take(track, p);
    });
    const gone = (pub: RemoteTrackPublication, p: RemoteParticipant): void => {
      if (!mine(p) || !pub.sid) return;
      const kind = this.slots.detach(pub.sid);
      if (kind) log.info(`${kind} track ${pub.sid} of ${identity} ended`);
      // Another matching track of that kind may already be subscribed (e.g. a second mic).
      if (kind) for (const other of p.trackPublications.values()) if (other.sid !== pub.sid && other.track && this.#matches(other)) this.#take(other.track, p);
    };
    this.#on(RoomEvent.TrackUnpublished, gone);
    this.#on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication, p: RemoteParticipant) => gone(pub, p));
    this.#on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      if (mine(p)) {
        log.info(`participant ${identity} left`);
        this.events.onSourceEnded();
      }
    });
    const found = await waitFor(
      () => [...room.remoteParticipants.values()].find(mine),
      (check) => {
        room.on(RoomEvent.ParticipantConnected, check);
        return () => room.off(RoomEvent.ParticipantConnected, check);
      },
      REQUIRED_WAIT_MS,
    );
    if (this.#closed) return;
    if (!found) throw errNotFound(`participant ${identity} not found`);
    this.publisherIdentity = found.identity;
    for (const pub of found.trackPublications.values()) {
      if (!this.#matches(pub)) continue;
      if (pub.track) this.#take(pub.track, found);
      else pub.setSubscribed(true);
    }
  }

  #take(track: RemoteTrack, p: RemoteParticipant): void {
    if (track.sid && this.slots.has(track.sid)) return;
    if (this.slots.attach(track)) log.info(`recording ${track.kind === TrackKind.KIND_VIDEO ? 'video' : 'audio'} track ${track.sid ?? ''} of ${p.identity}`);
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
  }
}

export class TrackCompositeSelection implements TrackSelection {
  readonly #offs: (() => void)[] = [];
  readonly #live = new Set<string>();
  #closed = false;
  publisherIdentity: string | null = null;

  constructor(
    private readonly source: RoomSource,
    private readonly slots: TrackSlots,
    private readonly plan: TrackCompositeSourcePlan,
    private readonly events: SelectionEvents,
  ) {}

  #on(event: RoomEvent, fn: (...args: never[]) => void): void {
    const room = this.source.room as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    room.on(event, fn);
    this.#offs.push(() => room.off(event, fn));
  }

  #find(sid: string): { pub: RemoteTrackPublication; p: RemoteParticipant } | undefined {
    for (const p of this.source.room.remoteParticipants.values()) {
      const pub = p.trackPublications.get(sid);
      if (pub) return { pub, p };
    }
    return undefined;
  }

  async begin(): Promise<void> {
    const room = this.source.room;
    const wanted = [
      { sid: this.plan.videoTrackId, kind: TrackKind.KIND_VIDEO, field: 'video_track_id' },
      { sid: this.plan.audioTrackId, kind: TrackKind.KIND_AUDIO, field: 'audio_track_id' },
    ].filter((w) => w.sid !== '');
    const ids = new Set(wanted.map((w) => w.sid));
    this.#on(RoomEvent.TrackSubscribed, (track: RemoteTrack, pub: RemoteTrackPublication) => {
      if (pub.sid && ids.has(pub.sid) && this.slots.attach(track)) {
        this.#live.add(pub.sid);
        log.info(`recording track ${pub.sid}`);
      }
    });
    const gone = (pub: RemoteTrackPublication): void => {
      if (!pub.sid || !this.#live.delete(pub.sid)) return;
      this.slots.detach(pub.sid);
      log.info(`track ${pub.sid} ended`);
      if (this.#live.size === 0) this.events.onSourceEnded();
    };
    this.#on(RoomEvent.TrackUnpublished, gone);
    this.#on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication) => gone(pub));
    this.#on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      for (const pub of p.trackPublications.values()) gone(pub);
    });
    const found = await Promise.all(
      wanted.map((w) =>
        waitFor(
          () => this.#find(w.sid),
          (check) => onTrackOrParticipant(room, check),
          REQUIRED_WAIT_MS,
        ).then((hit) => ({ w, hit })),
      ),
    );
    if (this.#closed) return;
    for (const { w, hit } of found) {
      if (!hit) throw errNotFound(`track ${w.sid} not found`);
      if (hit.pub.kind !== w.kind) throw errInvalidField(w.field);
    }
    // {publisher_identity}: the video track's publisher, else the audio track's.
    this.publisherIdentity = found[0]?.hit?.p.identity ?? null;
    for (const { hit } of found) {
      if (!hit) continue;
      if (hit.pub.track && hit.pub.sid) {
        if (this.slots.attach(hit.pub.track)) this.#live.add(hit.pub.sid);
      } else hit.pub.setSubscribed(true);
    }
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
  }
}

export interface FoundTrack {
  readonly pub: RemoteTrackPublication;
  readonly p: RemoteParticipant;
}

/** Waits up to 30 s for the track with `sid` to be published; the original's `track … not found` after. */
export async function findTrack(source: RoomSource, sid: string): Promise<FoundTrack> {
  const room = source.room;
  const find = (): FoundTrack | undefined => {
    for (const p of room.remoteParticipants.values()) {
      const pub = p.trackPublications.get(sid);
      if (pub) return { pub, p };
    }
    return undefined;
  };
  const hit = await waitFor(
    find,
    (check) => onTrackOrParticipant(room, check),
    REQUIRED_WAIT_MS,
  );
  if (!hit) throw errNotFound(`track ${sid} not found`);
  return hit;
}

/** `{track_type}`, `{track_source}`, `{publisher_identity}` of a found track. */
export function trackNames(hit: FoundTrack): Map<string, string> {
  return new Map([
    ['{track_type}', hit.pub.kind === TrackKind.KIND_VIDEO ? 'video' : 'audio'],
    ['{track_source}', sourceName(hit.pub.source)],
    ['{publisher_identity}', hit.p.identity],
  ]);
}

/** `{track_source}` names. */
function sourceName(s: TrackSource | undefined): string {
  switch (s) {
    case TrackSource.SOURCE_CAMERA:
      return 'camera';
    case TrackSource.SOURCE_MICROPHONE:
      return 'microphone';
    case TrackSource.SOURCE_SCREENSHARE:
      return 'screen_share';
    case TrackSource.SOURCE_SCREENSHARE_AUDIO:
      return 'screen_share_audio';
    default:
      return 'unknown';
  }
}

/**
 * Track egress of an AUDIO track: one track by id, required within 30 s; ends when it is
 * unpublished. A video track is written without transcoding from its encoded
 * frames, which rtc-node does not hand out: the controller takes that path (encoded-track.ts)
 * before this selection; a video track to a WebSocket gets the original's
 * `format websocket incompatible with codec …`.
 */
export class TrackEgressSelection implements TrackSelection {
  readonly #offs: (() => void)[] = [];
  #live = false;
  #closed = false;
  publisherIdentity: string | null = null;
  /** `{track_type}`, `{track_source}` once the track is known. */
  readonly names = new Map<string, string>();
  /** Mime type of the track once known (e.g. audio/opus, audio/red). */
  mimeType = '';

  constructor(
    private readonly source: RoomSource,
    private readonly slots: TrackSlots,
    private readonly plan: TrackSourcePlan,
    private readonly events: SelectionEvents,
    private readonly websocket: boolean,
    private readonly onMuted: (muted: boolean) => void = () => undefined,
  ) {}

  #on(event: RoomEvent, fn: (...args: never[]) => void): void {
    const room = this.source.room as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    room.on(event, fn);
    this.#offs.push(() => room.off(event, fn));
  }

  #take(track: RemoteTrack, pub: RemoteTrackPublication): void {
    if (this.#live || !this.slots.attach(track)) return;
    this.#live = true;
    if (pub.muted) this.onMuted(true);
    log.info(`recording track ${this.plan.trackId}`);
  }

  async begin(): Promise<void> {
    const sid = this.plan.trackId;
    this.#on(RoomEvent.TrackSubscribed, (track: RemoteTrack, pub: RemoteTrackPublication) => {
      if (pub.sid === sid) this.#take(track, pub);
    });
    const gone = (pub: RemoteTrackPublication): void => {
      if (pub.sid !== sid || !this.#live) return;
      this.#live = false;
      this.slots.detach(sid);
      log.info(`track ${sid} ended`);
      this.events.onSourceEnded();
    };
    this.#on(RoomEvent.TrackUnpublished, gone);
    this.#on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication) => gone(pub));
    this.#on(RoomEvent.TrackMuted, (pub: RemoteTrackPublication) => {
      if (pub.sid === sid && this.#live) this.onMuted(true);
    });
    this.#on(RoomEvent.TrackUnmuted, (pub: RemoteTrackPublication) => {
      if (pub.sid === sid && this.#live) this.onMuted(false);
    });
    this.#on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      const pub = p.trackPublications.get(sid);
      if (pub) gone(pub);
    });
    let hit: FoundTrack;
    try {
      hit = await findTrack(this.source, sid);
    } catch (err) {
      if (this.#closed) return;
      throw err;
    }
    if (this.#closed) return;
    this.mimeType = hit.pub.mimeType ?? '';
    // A video track to a file is written without transcoding by the controller (encoded-track.ts).
    if (hit.pub.kind === TrackKind.KIND_VIDEO) {
      if (this.websocket) throw new EgressError('E_INVALID_INPUT', 'invalid_argument', `format websocket incompatible with codec ${this.mimeType.toLowerCase() || 'video'}`);
      throw new EgressError('E_INTERNAL', 'internal', 'video track handed to the audio track reader');
    }
    this.publisherIdentity = hit.p.identity;
    for (const [k, v] of trackNames(hit)) if (k !== '{publisher_identity}') this.names.set(k, v);
    if (hit.pub.track) this.#take(hit.pub.track, hit.pub);
    else hit.pub.setSubscribed(true);
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
  }
}

/**
 * Audio-only room composite on the SDK source: every audio track of the room, added and removed
 * for the whole session, mixed by `audio_mixing`: DEFAULT_MIXING → both channels;
 * DUAL_CHANNEL_AGENT → agents left, everyone else right; DUAL_CHANNEL_ALTERNATE → each newly added
 * track on the next side, L, R, L… The room closing ends it (the controller sees the disconnect).
 */
export class RoomAudioSelection implements TrackSelection {
  readonly #offs: (() => void)[] = [];
  readonly #readers = new Map<string, TrackReader>();
  #closed = false;
  #added = 0;
  readonly publisherIdentity = null;

  constructor(
    private readonly source: RoomSource,
    private readonly mixer: AudioMixer,
    private readonly plan: RoomAudioSourcePlan,
  ) {}

  #on(event: RoomEvent, fn: (...args: never[]) => void): void {
    const room = this.source.room as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    room.on(event, fn);
    this.#offs.push(() => room.off(event, fn));
  }

  #route(p: RemoteParticipant): AudioRoute {
    switch (this.plan.mixing) {
      case 'dual_channel_agent':
        return p.kind === ParticipantKind.AGENT ? 'left' : 'right';
      case 'dual_channel_alternate':
        return this.#added++ % 2 === 0 ? 'left' : 'right';
      default:
        return 'both';
    }
  }

  #take(track: RemoteTrack, p: RemoteParticipant): void {
    const sid = track.sid ?? '';
    if (this.#closed || track.kind !== TrackKind.KIND_AUDIO || this.#readers.has(sid)) return;
    const route = this.#route(p);
    this.mixer.addInput(sid, route);
    this.#readers.set(sid, this.source.readAudio(track, (c) => this.mixer.push(sid, c)));
    log.info(`mixing audio track ${sid} of ${p.identity} (${route})`);
  }

  #drop(sid: string | undefined): void {
    const r = sid ? this.#readers.get(sid) : undefined;
    if (!r || !sid) return;
    this.#readers.delete(sid);
    this.mixer.removeInput(sid);
    void r.cancel();
  }

  async begin(): Promise<void> {
    this.#on(RoomEvent.TrackPublished, (pub: RemoteTrackPublication) => {
      if (pub.kind === TrackKind.KIND_AUDIO) pub.setSubscribed(true);
    });
    this.#on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub: RemoteTrackPublication, p: RemoteParticipant) => this.#take(track, p));
    this.#on(RoomEvent.TrackUnpublished, (pub: RemoteTrackPublication) => this.#drop(pub.sid));
    this.#on(RoomEvent.TrackUnsubscribed, (_t: RemoteTrack, pub: RemoteTrackPublication) => this.#drop(pub.sid));
    for (const p of this.source.room.remoteParticipants.values()) {
      for (const pub of p.trackPublications.values()) {
        if (pub.kind !== TrackKind.KIND_AUDIO) continue;
        if (pub.track) this.#take(pub.track, p);
        else pub.setSubscribed(true);
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    for (const sid of [...this.#readers.keys()]) this.#drop(sid);
  }
}

/** Calls `check` whenever a track is published or a participant joins; returns the unsubscribe. */
export function onTrackOrParticipant(room: Room, check: () => void): () => void {
  room.on(RoomEvent.TrackPublished, check);
  room.on(RoomEvent.ParticipantConnected, check);
  return () => {
    room.off(RoomEvent.TrackPublished, check);
    room.off(RoomEvent.ParticipantConnected, check);
  };
}
