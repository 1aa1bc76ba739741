import type { RemoteTrack } from '@livekit/rtc-node';
import { TrackKind } from '@livekit/rtc-node';
import type { MediaTimeline } from './media-timeline.js';
import type { RoomSource, TrackReader } from './room-source.js';

/**
 * The tracks an SDK egress records right now: at most one video and one audio track, each read
 * into the timeline. A track that goes away leaves black video / silence until another one takes
 * its slot.
 */
export class TrackSlots {
  #video: TrackReader | null = null;
  #audio: TrackReader | null = null;
  #closed = false;

  constructor(
    private readonly source: RoomSource,
    private readonly timeline: MediaTimeline,
    private readonly want: { readonly video: boolean; readonly audio: boolean },
  ) {}

  /** True if the track was taken (its slot was free and the kind is recorded). */
  attach(track: RemoteTrack): boolean {
    if (this.#closed) return false;
    if (track.kind === TrackKind.KIND_VIDEO && this.want.video && !this.#video) {
      this.#video = this.source.readVideo(track, (f) => this.timeline.pushVideo(f));
      return true;
    }
    if (track.kind === TrackKind.KIND_AUDIO && this.want.audio && !this.#audio) {
      this.#audio = this.source.readAudio(track, (c) => this.timeline.pushAudio(c));
      return true;
    }
    return false;
  }

  /** The track with `sid` stopped (unpublished, unsubscribed): frees its slot. */
  detach(sid: string): 'video' | 'audio' | null {
    if (this.#video?.sid === sid) {
      void this.#video.cancel();
      this.#video = null;
      this.timeline.videoGone();
      return 'video';
    }
    if (this.#audio?.sid === sid) {
      void this.#audio.cancel();
      this.#audio = null;
      return 'audio';
    }
    return null;
  }

  has(sid: string): boolean {
    return this.#video?.sid === sid || this.#audio?.sid === sid;
  }

  get videoSid(): string | null {
    return this.#video?.sid ?? null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const readers = [this.#video, this.#audio].filter((r): r is TrackReader => r !== null);
    this.#video = null;
    this.#audio = null;
    await Promise.race([Promise.all(readers.map((r) => r.cancel())), new Promise((r) => setTimeout(r, 2000))]);
  }
}
