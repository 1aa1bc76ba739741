/**
 * HLS media playlists in the original's format: an EVENT playlist that lists every
 * segment, and an optional rolling live playlist of the newest segments. Pure text, no I/O.
 */

export interface PlaylistSegment {
  /** Wall clock of the segment's first sample. */
  readonly programDateTime: Date;
  readonly durationS: number;
  /** Path relative to the playlist's directory. */
  readonly uri: string;
}

export interface PlaylistOptions {
  /** 'event': every segment, PLAYLIST-TYPE EVENT. 'live': sliding window, no type line. */
  readonly kind: 'event' | 'live';
  /** #EXT-X-TARGETDURATION (the requested segment duration, whole seconds). */
  readonly targetDurationS: number;
  /** Live playlist window (the original keeps 5). */
  readonly window?: number;
}

export const LIVE_PLAYLIST_WINDOW = 5;

export class MediaPlaylist {
  readonly #segments: PlaylistSegment[] = [];
  #dropped = 0;
  #closed = false;

  constructor(private readonly opts: PlaylistOptions) {}

  get segmentCount(): number {
    return this.#segments.length + this.#dropped;
  }

  append(segment: PlaylistSegment): void {
    if (this.#closed) throw new Error('playlist is closed');
    this.#segments.push(segment);
    const window = this.opts.window ?? LIVE_PLAYLIST_WINDOW;
    if (this.opts.kind === 'live') {
      while (this.#segments.length > window) {
        this.#segments.shift();
        this.#dropped++;
      }
    }
  }

  /** Appends #EXT-X-ENDLIST from now on. */
  close(): void {
    this.#closed = true;
  }

  render(): string {
    const lines = ['#EXTM3U', '#EXT-X-VERSION:4'];
    if (this.opts.kind === 'event') lines.push('#EXT-X-PLAYLIST-TYPE:EVENT');
    lines.push('#EXT-X-ALLOW-CACHE:NO', `#EXT-X-TARGETDURATION:${Math.trunc(this.opts.targetDurationS)}`, `#EXT-X-MEDIA-SEQUENCE:${this.#dropped}`);
    for (const s of this.#segments) {
      lines.push(`#EXT-X-PROGRAM-DATE-TIME:${s.programDateTime.toISOString()}`, `#EXTINF:${s.durationS.toFixed(3)},`, s.uri);
    }
    if (this.#closed) lines.push('#EXT-X-ENDLIST');
    return `${lines.join('\n')}\n`;
  }
}
