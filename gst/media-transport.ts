import type { Writable } from 'node:stream';
import { AudioLevelMeter, type AudioLevel } from './audio-level.js';
import { BUFFER_FLAG_DELTA_UNIT, gdpBufferHeader, gdpCaps, gdpStreamStart, gdpTimeSegment } from './gdp.js';

/**
 * The timestamped transport from a capture host into the GStreamer child. Every frame and audio
 * chunk carries its capture time in microseconds on one clock (the machine's wall clock, as
 * `performance.timeOrigin + performance.now()` in the page and in Node); this class turns those into
 * running times from the recording start and writes them as GDP packets (gdp.ts).
 *
 * Video: frames arrive only when the page repaints, so the last frame is repeated when none came for
 * a while (videorate then makes the rate exact) and once more at the stop time so the video lasts as
 * long as the recording. When the encoder falls behind, video frames are dropped here (never audio)
 * so memory stays bounded; videorate fills the gap by repeating.
 *
 * Encoded video (pushEncodedVideo, the in-browser encode path): the page paces the frames itself
 * (it encodes its last picture again when nothing was painted), so nothing is repeated here; a frame
 * is written only after a keyframe — at the start, after a resume and after a frame dropped here — and
 * one is asked of the page (requestKeyframe) whenever one is needed.
 *
 * Pause: between pause(t) and resume(t') nothing is written and the running time does not advance —
 * media captured in the paused interval is dropped here, before any encoding, and media after it is
 * shifted back by the pause's length, so the file goes on with continuous timestamps.
 */

export type RawVideoFormat = 'I420' | 'NV12' | 'RGBA' | 'RGBx' | 'BGRA' | 'BGRx';

export interface VideoFrameIn {
  readonly ptsUs: number;
  readonly format: RawVideoFormat;
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

/** One H.264 access unit (Annex B) encoded in the page, stamped with its picture's capture time. */
export interface EncodedVideoIn {
  readonly ptsUs: number;
  readonly key: boolean;
  /** The page encoded its previous picture again (nothing new was painted). */
  readonly repeat: boolean;
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

export interface AudioChunkIn {
  readonly ptsUs: number;
  readonly sampleRate: number;
  readonly channels: number;
  /** Interleaved float32 little-endian samples. */
  readonly data: Buffer;
}

export interface TransportStats {
  videoFramesIn: number;
  videoFramesWritten: number;
  videoFramesRepeated: number;
  videoFramesDropped: number;
  audioChunksWritten: number;
  audioSamplesWritten: number;
  bytesWritten: number;
  firstVideoPtsUs: number | null;
  firstAudioPtsUs: number | null;
}

/** Audio as it leaves the transport: trimmed to the recording, running time from its start. */
export interface AudioChunkOut {
  readonly ptsNs: bigint;
  readonly sampleRate: number;
  readonly channels: number;
  /** Interleaved float32 little-endian samples. */
  readonly data: Buffer;
}

export interface MediaTransportOptions {
  readonly video: Writable | null;
  /** GStreamer's audio input, or a function taking the audio when no pipeline encodes it (raw PCM out). */
  readonly audio: Writable | ((chunk: AudioChunkOut) => void) | null;
  readonly framerate: number;
  /** Repeat the last frame when no new one came for this long. */
  readonly repeatAfterMs?: number;
  /** Drop new video frames while this many bytes are still queued towards GStreamer. */
  readonly maxQueuedVideoBytes?: number;
  readonly now?: () => number;
  /**
   * Move the start onto the grid of the captured frames (see start()). For sources whose frames
   * come on a steady grid: a tab capture's frames are stamped on the display's vsync ticks.
   */
  readonly alignStartToFrames?: boolean;
  /** Encoded video: asks the source for a keyframe (needed at the start, after a resume or a drop). */
  readonly requestKeyframe?: () => void;
  /**
   * The audio encoder's delay (µs, audioEncoderDelayUs): audio is written this much earlier, so a
   * player hears each sample at its captured time. The first this-much after the start is cut.
   */
  readonly audioEncoderDelayUs?: number;
}

/** How long after the start a fresh frame may take before the last earlier one is used. */
const FIRST_FRAME_GRACE_US = 500_000;

/** Shortest time between two keyframe requests to the page (its answer takes a frame or two). */
const KEYFRAME_ASK_US = 100_000;

/** How far behind "now" a repeated frame is stamped. */
const REPEAT_LAG_US = 50_000;
/**
 * Longest a deferral (defer()) keeps media waiting: the room template tells a stalled signal
 * reconnect from a live one within about a second; past this the media is taken to be live.
 */
const MAX_DEFER_MS = 2_500;

export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export function frameSize(format: RawVideoFormat, width: number, height: number): number {
  const r4 = (n: number): number => (n + 3) & ~3;
  const cw = Math.ceil(width / 2);
  const ch = Math.ceil(height / 2);
  switch (format) {
    case 'I420':
      return r4(width) * height + 2 * r4(cw) * ch;
    case 'NV12':
      return r4(width) * height + r4(cw * 2) * ch;
    default:
      return width * height * 4;
  }
}

type DeferredItem = ['video', VideoFrameIn] | ['audio', AudioChunkIn] | ['encoded', EncodedVideoIn];

export class MediaTransport {
  readonly stats: TransportStats = {
    videoFramesIn: 0,
    videoFramesWritten: 0,
    videoFramesRepeated: 0,
    videoFramesDropped: 0,
    audioChunksWritten: 0,
    audioSamplesWritten: 0,
    bytesWritten: 0,
    firstVideoPtsUs: null,
    firstAudioPtsUs: null,
  };
  #startUs: number | null = null;
  #lastFrame: VideoFrameIn | null = null;
  #lastVideoPtsNs = -1n;
  #lastVideoWriteAtUs = 0;
  #videoCaps = '';
  #audioCaps = '';
  readonly #audioEncoderDelayNs: bigint;
  #audioNextPtsNs = 0n;
  #ended = false;
  #stopUs: number | null = null;
  /** Nothing past this instant is written while set (the source's connection is being retried). */
  #holdUs: number | null = null;
  /** Media waiting while it is not known whether the source was lost (see defer()). */
  #deferred: { readonly sinceMs: number; readonly queue: DeferredItem[] } | null = null;
  /** Encoded video: frames are dropped until a keyframe (start, resume, after a drop). */
  #needKeyframe = true;
  #encodedSeen = false;
  #encodedCaps = '';
  #keyframeAskedAtUs = -Infinity;
  #lastAudioEndUs = -Infinity;
  #lastVideoInUs = -Infinity;
  /** Level of the audio the page plays (also while paused: the operator still sees the source). */
  readonly #level = new AudioLevelMeter();
  /** Paused intervals on the capture clock (µs); the last one is open (`toUs` null) while paused. */
  readonly #pauses: { fromUs: number; toUs: number | null }[] = [];
  readonly #timer: NodeJS.Timeout | null;
  readonly #frameNs: bigint;
  readonly #now: () => number;
  readonly #maxQueued: number;

  constructor(private readonly opts: MediaTransportOptions) {
    this.#now = opts.now ?? nowUs;
    this.#frameNs = BigInt(Math.round(1e9 / opts.framerate));
    this.#maxQueued = opts.maxQueuedVideoBytes ?? 24 * 1024 * 1024;
    this.#audioEncoderDelayNs = BigInt(Math.round((opts.audioEncoderDelayUs ?? 0) * 1000));
    opts.video?.write(gdpStreamStart('egress-video'));
    if (opts.audio && typeof opts.audio !== 'function') opts.audio.write(gdpStreamStart('egress-audio'));
    const repeatMs = opts.repeatAfterMs ?? 200;
    this.#timer = opts.video ? setInterval(() => this.#repeatIfIdle(repeatMs), Math.max(20, repeatMs / 4)) : null;
  }

  /** True once the recording start is set; buffers before it are discarded. */
  get started(): boolean {
    return this.#startUs !== null;
  }

  get startUs(): number | null {
    return this.#startUs;
  }

  /**
   * Starts the recording at `atUs` (capture clock, µs) and returns the start actually used; the
   * newest frame seen before it becomes the first frame, at running time 0. With alignStartToFrames the
   * start moves later (by less than a frame) onto the grid of the frames captured so far, so each frame
   * lands exactly on one of the output's frame slots. Off the grid, videorate rounds every frame to
   * its nearest slot: the picture moves by up to half a frame against the audio, by an amount that
   * depends only on where the start fell between two captures, so the A/V offset of one page changed
   * by a frame from one recording to the next.
   */
  start(atUs: number): number {
    if (this.#startUs !== null) return this.#startUs;
    const frame = this.opts.alignStartToFrames && this.opts.video ? this.#lastFrame : null;
    if (frame) {
      const frameUs = 1e6 / this.opts.framerate;
      // Only later, never earlier: a start signal means nothing before it is recorded, and the frames
      // captured in the half frame before it (still the old picture) may arrive after this call.
      atUs = frame.ptsUs + Math.ceil((atUs - frame.ptsUs) / frameUs - 1e-6) * frameUs;
    }
    this.#startUs = atUs;
    // Encoded video opens on a keyframe: the page's first one came before the start.
    this.#askKeyframe();
    return atUs;
  }

  /** Asks the source for a keyframe, at most every KEYFRAME_ASK_US. */
  #askKeyframe(): void {
    const now = this.#now();
    if (now - this.#keyframeAskedAtUs < KEYFRAME_ASK_US) return;
    this.#keyframeAskedAtUs = now;
    this.opts.requestKeyframe?.();
  }

  /**
   * One access unit encoded in the page. Written with its capture time mapped like a raw frame's;
   * the first one at or after the start (a keyframe) opens the video at running time 0.
   */
  pushEncodedVideo(au: EncodedVideoIn): void {
    if (this.#ended || !this.opts.video) return;
    if (this.#deferring(['encoded', au])) return;
    this.#encodedSeen = true;
    this.#lastVideoInUs = Math.max(this.#lastVideoInUs, au.ptsUs);
    const limitUs = this.#limitUs;
    if (limitUs !== null && au.ptsUs >= limitUs) {
      // Past a hold, frames are dropped: if it is released, the video goes on from a keyframe.
      this.#needKeyframe = true;
      return;
    }
    if (this.#startUs === null) return;
    if (this.#isPausedAt(au.ptsUs)) {
      this.#needKeyframe = true;
      return;
    }
    let pts = this.#toNs(au.ptsUs);
    // A keyframe up to a frame before the start opens the recording (the page answers a request
    // with its newest picture, stamped a little early: its monotonic clock estimate errs low).
    if (pts < 0n && au.key && this.#lastVideoPtsNs < 0n && pts >= -this.#frameNs) pts = 0n;
    if (pts < 0n || (this.#needKeyframe && !au.key)) {
      // The keyframe asked for may have been captured just before the start (or resume): ask
      // again until one comes after it.
      if (this.#needKeyframe) this.#askKeyframe();
      return;
    }
    this.#needKeyframe = false;
    // Onto the frame grid (as videorate puts raw frames): a constant-rate file, each frame at most
    // half a frame from its capture time; a frame whose slot is taken goes into the next one.
    if (this.#lastVideoPtsNs < 0n) pts = 0n;
    else {
      let slot = (pts + this.#frameNs / 2n) / this.#frameNs;
      const lastSlot = this.#lastVideoPtsNs / this.#frameNs;
      if (slot <= lastSlot) slot = lastSlot + 1n;
      pts = slot * this.#frameNs;
    }
    const w = this.opts.video;
    if (w.writableLength > this.#maxQueued) {
      // A dropped access unit breaks every frame that references it: wait for the next keyframe.
      this.stats.videoFramesDropped++;
      this.#needKeyframe = true;
      this.#askKeyframe();
      return;
    }
    const caps = `video/x-h264, stream-format=(string)byte-stream, alignment=(string)au, width=(int)${au.width}, height=(int)${au.height}, pixel-aspect-ratio=(fraction)1/1`;
    if (caps !== this.#encodedCaps) {
      w.write(gdpCaps(caps));
      if (this.#encodedCaps === '') w.write(gdpTimeSegment());
      this.#encodedCaps = caps;
    }
    w.write(gdpBufferHeader(au.data.length, pts, this.#frameNs, au.key ? 0 : BUFFER_FLAG_DELTA_UNIT));
    w.write(au.data);
    this.#lastVideoPtsNs = pts;
    this.stats.bytesWritten += au.data.length + 62;
    if (au.repeat) this.stats.videoFramesRepeated++;
    else {
      this.stats.videoFramesWritten++;
      this.stats.firstVideoPtsUs ??= au.ptsUs;
    }
    this.stats.videoFramesIn++;
  }

  pushVideo(frame: VideoFrameIn): void {
    if (this.#ended || !this.opts.video) return;
    if (this.#deferring(['video', frame])) return;
    this.stats.videoFramesIn++;
    this.#lastVideoInUs = Math.max(this.#lastVideoInUs, frame.ptsUs);
    const limitUs = this.#limitUs;
    // A frame at the stop lies past the recording. On the frame grid (alignStartToFrames) a frame
    // captured up to half a frame before the stop is the one of the slot at the stop: past it too
    // (written, it made the video one frame longer and added an image at that instant).
    const cutUs = limitUs === null ? null : this.opts.alignStartToFrames ? limitUs - 5e5 / this.opts.framerate : limitUs;
    if (cutUs !== null && frame.ptsUs >= cutUs) return;
    this.#lastFrame = frame;
    if (this.#startUs === null) return;
    if (this.#isPausedAt(frame.ptsUs)) return;
    let pts = this.#toNs(frame.ptsUs);
    if (pts < 0n) return;
    // The first frame captured at or after the start opens the recording at running time 0, so
    // video starts with audio and nothing shown before the start is recorded.
    if (this.#lastVideoPtsNs < 0n) pts = 0n;
    else if (pts <= this.#lastVideoPtsNs) pts = this.#lastVideoPtsNs + 1n;
    if (this.opts.video.writableLength > this.#maxQueued) {
      this.stats.videoFramesDropped++;
      return;
    }
    this.#writeVideo(frame, pts, false);
  }

  pushAudio(chunk: AudioChunkIn): void {
    if (this.#ended || !this.opts.audio) return;
    if (this.#deferring(['audio', chunk])) return;
    this.#level.feed(chunk.data, chunk.ptsUs);
    if (this.#startUs === null) return;
    const w = this.opts.audio;
    const frames = chunk.data.length / 4 / chunk.channels;
    const durNs = BigInt(Math.round((frames * 1e9) / chunk.sampleRate));
    this.#lastAudioEndUs = Math.max(this.#lastAudioEndUs, chunk.ptsUs + (frames * 1e6) / chunk.sampleRate);
    let data = chunk.data;
    let chunkPtsUs = chunk.ptsUs;
    const cut = this.#pauseCut(chunkPtsUs, (frames * 1e6) / chunk.sampleRate);
    if (cut) {
      // Keep the part before the pause, or the part after its end; drop what falls inside it.
      if (cut.keepBeforeUs !== null) {
        const keep = Math.round((cut.keepBeforeUs * chunk.sampleRate) / 1e6);
        if (keep <= 0) return;
        data = data.subarray(0, keep * 4 * chunk.channels);
      } else if (cut.skipUs !== null) {
        const skip = Math.round((cut.skipUs * chunk.sampleRate) / 1e6);
        if (skip >= frames) return;
        data = data.subarray(skip * 4 * chunk.channels);
        chunkPtsUs += (skip * 1e6) / chunk.sampleRate;
      } else return;
    }
    let pts = this.#toNs(chunkPtsUs) - this.#audioEncoderDelayNs;
    const limitUs = this.#limitUs;
    if (limitUs !== null) {
      // Keep exactly up to the stop time (or the hold).
      const keep = Math.round(((limitUs - chunkPtsUs) * chunk.sampleRate) / 1e6);
      if (keep <= 0) return;
      if (keep < data.length / 4 / chunk.channels) data = data.subarray(0, keep * 4 * chunk.channels);
    }
    if (pts + durNs <= 0n) return;
    if (pts < 0n) {
      // Trim the part before the recording start so audio starts exactly at 0.
      const skipFrames = Math.min(data.length / 4 / chunk.channels, Math.round((Number(-pts) * chunk.sampleRate) / 1e9));
      data = data.subarray(skipFrames * 4 * chunk.channels);
      pts = 0n;
      if (data.length === 0) return;
    }
    const outFrames = data.length / 4 / chunk.channels;
    const outDur = BigInt(Math.round((outFrames * 1e9) / chunk.sampleRate));
    this.stats.firstAudioPtsUs ??= chunk.ptsUs;
    if (typeof w === 'function') w({ ptsNs: pts, sampleRate: chunk.sampleRate, channels: chunk.channels, data });
    else {
      const caps = `audio/x-raw, format=(string)F32LE, layout=(string)interleaved, rate=(int)${chunk.sampleRate}, channels=(int)${chunk.channels}, channel-mask=(bitmask)0x0000000000000003`;
      if (caps !== this.#audioCaps) {
        w.write(gdpCaps(caps));
        w.write(gdpTimeSegment());
        this.#audioCaps = caps;
      }
      w.write(gdpBufferHeader(data.length, pts, outDur));
      w.write(data);
    }
    this.#audioNextPtsNs = pts + outDur;
    this.stats.audioChunksWritten++;
    this.stats.audioSamplesWritten += outFrames;
    this.stats.bytesWritten += data.length + 62;
  }

  /** Pauses at `atUs` (capture clock): nothing captured from then on is written until resume(). */
  pause(atUs: number): boolean {
    if (this.paused || this.#ended) return false;
    const last = this.#pauses[this.#pauses.length - 1];
    this.#pauses.push({ fromUs: Math.max(atUs, last?.toUs ?? -Infinity), toUs: null });
    return true;
  }

  /** Resumes at `atUs`: media captured from then on follows what was written before the pause. */
  resume(atUs: number): boolean {
    const open = this.#pauses[this.#pauses.length - 1];
    if (!open || open.toUs !== null) return false;
    open.toUs = Math.max(atUs, open.fromUs);
    if (this.opts.alignStartToFrames) {
      // Whole frames out of the timeline: the frames after the resume stay on the slot grid the start
      // was put on (see start()). Any other length moved them by up to a frame against the audio —
      // the booth's A/V page read 24 ms before a pause and 53 ms after it. Rounded up, so nothing
      // captured while paused is written.
      const frameUs = 1e6 / this.opts.framerate;
      open.toUs = open.fromUs + Math.ceil((open.toUs - open.fromUs) / frameUs - 1e-6) * frameUs;
    }
    // Encoded video goes on from a keyframe: what the page encodes next references paused frames.
    this.#needKeyframe = true;
    this.opts.requestKeyframe?.();
    // Fresh frames from the resume on are still in flight: the idle repeat must give them the usual
    // time before it pads with the last picture.
    this.#lastVideoWriteAtUs = Math.max(this.#lastVideoWriteAtUs, this.#now());
    return true;
  }

  get paused(): boolean {
    const last = this.#pauses[this.#pauses.length - 1];
    return !!last && last.toUs === null;
  }

  /** The paused intervals so far (capture clock, µs; `toUs` null while still paused). */
  get pauses(): readonly { readonly fromUs: number; readonly toUs: number | null }[] {
    return this.#pauses.map((p) => ({ ...p }));
  }

  /** Paused time before `atUs` (µs), counting an open pause up to `atUs`. */
  pausedUsBefore(atUs: number): number {
    let total = 0;
    for (const p of this.#pauses) {
      if (p.fromUs >= atUs) break;
      total += Math.min(p.toUs ?? atUs, atUs) - p.fromUs;
    }
    return total;
  }

  #isPausedAt(us: number): boolean {
    return this.#pauses.some((p) => us >= p.fromUs && (p.toUs === null || us < p.toUs));
  }

  /**
   * How a chunk [startUs, startUs + durUs) meets the pauses: null if it does not; else the length to
   * keep before a pause that starts inside it, or the length to skip from its start (a pause it starts
   * in ends inside it), or neither (it lies wholly inside a pause).
   */
  #pauseCut(startUs: number, durUs: number): { keepBeforeUs: number | null; skipUs: number | null } | null {
    const endUs = startUs + durUs;
    for (const p of this.#pauses) {
      const pEnd = p.toUs ?? Infinity;
      if (pEnd <= startUs || p.fromUs >= endUs) continue;
      if (p.fromUs > startUs) return { keepBeforeUs: p.fromUs - startUs, skipUs: null };
      if (pEnd < endUs) return { keepBeforeUs: null, skipUs: pEnd - startUs };
      return { keepBeforeUs: null, skipUs: null };
    }
    return null;
  }

  /**
   * Marks the stop time (capture clock, µs): media after it is discarded. Capture runs a little behind
   * real time, so the caller waits for `reachedStop()` before ending, and the recording then ends
   * exactly at the stop instead of losing what was still in flight.
   */
  setStop(atUs: number): void {
    this.#stopUs ??= atUs;
    // A stop decides what waited: written up to it.
    this.#undefer();
  }

  /**
   * Holds the output at `atUs` (capture clock): media and repeats past it are not written until
   * release(). While a source's connection is retried nothing live arrives, and the idle repeats
   * would otherwise write a frozen picture past the instant it was lost; if it never comes back
   * the recording ends there (setStop at the same instant), if it does, the gap is filled as any
   * other (videorate repeats the picture across it).
   */
  hold(atUs: number): void {
    this.#holdUs ??= atUs;
    // What waited is written up to the hold; the rest is dropped by the limit.
    this.#undefer();
  }

  release(): void {
    this.#holdUs = null;
    if (this.#encodedSeen && this.#needKeyframe) {
      this.#keyframeAskedAtUs = -Infinity;
      this.#askKeyframe();
    }
    this.#undefer();
  }

  /**
   * Lets media wait (at most MAX_DEFER_MS) instead of being written, while it is not yet known whether
   * the source was lost: a signal-only reconnect may carry on with live media (written once it is
   * known, by release()), or turn out to be the source gone (hold() at the instant it was lost then
   * drops what came after, so no frozen picture or silence of the detection is written). Idle
   * repeats wait too.
   */
  defer(): void {
    if (this.#ended) return;
    this.#deferred ??= { sinceMs: Date.now(), queue: [] };
  }

  /** True when `item` was queued instead of written; a deferral past its bound writes what waited. */
  #deferring(item: DeferredItem): boolean {
    const d = this.#deferred;
    if (!d) return false;
    d.queue.push(item);
    if (Date.now() - d.sinceMs > MAX_DEFER_MS) this.#undefer();
    return true;
  }

  /** Writes what waited, in arrival order, and stops deferring. */
  #undefer(): void {
    const d = this.#deferred;
    this.#deferred = null;
    for (const item of d?.queue ?? []) {
      if (item[0] === 'video') this.pushVideo(item[1]);
      else if (item[0] === 'encoded') this.pushEncodedVideo(item[1]);
      else this.pushAudio(item[1]);
    }
  }

  /** Where writing ends for now: the stop, or an earlier hold. */
  get #limitUs(): number | null {
    if (this.#holdUs === null) return this.#stopUs;
    return this.#stopUs === null ? this.#holdUs : Math.min(this.#stopUs, this.#holdUs);
  }

  /** True when every enabled stream has delivered media up to the stop time. */
  reachedStop(): boolean {
    if (this.#stopUs === null) return false;
    const videoDone = !this.opts.video || this.#lastVideoInUs >= this.#stopUs || (this.#lastFrame === null && !this.#encodedSeen);
    const audioDone = !this.opts.audio || this.#lastAudioEndUs >= this.#stopUs;
    return videoDone && audioDone;
  }

  /**
   * Until when the source is known to have been alive (µs): the end of the newest audio received —
   * audio flows without pause while a page lives, while a still page sends no video frames at all.
   * Null without audio, or before any.
   */
  get aliveUntilUs(): number | null {
    return this.opts.audio && Number.isFinite(this.#lastAudioEndUs) ? this.#lastAudioEndUs : null;
  }

  /** Peak and RMS of the newest audio received (a meter; see audio-level.ts). */
  get audioLevel(): AudioLevel {
    return this.#level.level;
  }

  /** Running time of the newest audio written, in ns. */
  get audioPositionNs(): bigint {
    return this.#audioNextPtsNs;
  }

  /**
   * Ends both inputs: repeats the last frame in the last frame slot before the stop (so video covers
   * the whole recording and not a frame more) and closes the pipes, which is EOS for the pipeline.
   */
  end(stopAtUs?: number): void {
    if (this.#ended) return;
    if (this.#timer) clearInterval(this.#timer);
    this.#undefer();
    if (this.#startUs !== null && this.#lastFrame && this.opts.video) {
      // A hold still in place (the source was lost there and never came back) ends the video there too.
      const stopNs = this.#toNs(this.#limitUs ?? stopAtUs ?? this.#now());
      // videorate fills a gap between two buffers (the earlier one up to the midpoint, the later
      // one after it) but at EOS sends its last buffer once: the video track ends one frame after
      // the last buffer. So the last picture goes into the last slot before the stop, and — so a gap
      // before it (frames dropped while GStreamer fell behind on a loaded machine) is filled, not
      // ended at its midpoint — into the slot before that too. Nothing AT the stop: a frame there
      // lies past the recording (one frame longer than reported, an image or a keyframe at a
      // segment boundary in outputs that have already ended).
      const lastSlotNs = stopNs - this.#frameNs;
      const slotBeforeNs = lastSlotNs - this.#frameNs;
      if (slotBeforeNs > this.#lastVideoPtsNs) this.#writeVideo(this.#lastFrame, slotBeforeNs, true);
      if (lastSlotNs > this.#lastVideoPtsNs) this.#writeVideo(this.#lastFrame, lastSlotNs, true);
    }
    this.#ended = true;
    this.opts.video?.end();
    if (this.opts.audio && typeof this.opts.audio !== 'function') this.opts.audio.end();
  }

  /** Stops writing without EOS (the pipeline is gone). */
  abort(): void {
    this.#ended = true;
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Running time of a capture instant: from the start, minus the paused time before it. */
  #toNs(ptsUs: number): bigint {
    return BigInt(Math.round((ptsUs - (this.#startUs as number) - this.pausedUsBefore(ptsUs)) * 1000));
  }

  #repeatIfIdle(repeatMs: number): void {
    if (this.#ended || this.#startUs === null || !this.#lastFrame || !this.opts.video || this.paused) return;
    if (this.#deferred) {
      // Nothing is repeated while media waits; a deferral no source ends is ended here.
      if (Date.now() - this.#deferred.sinceMs > MAX_DEFER_MS) this.#undefer();
      return;
    }
    const now = this.#now();
    if (this.#isPausedAt(now - REPEAT_LAG_US)) return;
    if (now - this.#lastVideoWriteAtUs < repeatMs * 1000) return;
    // A page that does not repaint after the start gets its last picture from before it, but only
    // once a fresh frame had a fair chance to arrive.
    if (this.#lastVideoPtsNs < 0n && now - this.#startUs < FIRST_FRAME_GRACE_US) return;
    // Stamp the repeat a little in the past, so a real frame captured just before it (and still in
    // flight) does not arrive with an older timestamp.
    const pts = this.#lastVideoPtsNs < 0n ? 0n : this.#toNs(now - REPEAT_LAG_US);
    if (pts <= this.#lastVideoPtsNs) return;
    // Nothing past a stop that is already known (end() puts the last frame exactly at it), nor a hold.
    const limitUs = this.#limitUs;
    if (limitUs !== null && pts >= this.#toNs(limitUs)) return;
    if (this.opts.video.writableLength > this.#maxQueued) return;
    this.#writeVideo(this.#lastFrame, pts, true);
  }

  #writeVideo(frame: VideoFrameIn, ptsNs: bigint, repeat: boolean): void {
    const w = this.opts.video as Writable;
    // Chromium's captured frames are BT.709 limited range with MPEG-2 chroma siting; saying so lets
    // videoconvert pass I420 through untouched instead of converting to the encoder's caps.
    const yuv = frame.format === 'I420' || frame.format === 'NV12';
    const color = yuv ? ', colorimetry=(string)bt709, chroma-site=(string)mpeg2' : '';
    const caps = `video/x-raw, format=(string)${frame.format}, width=(int)${frame.width}, height=(int)${frame.height}, framerate=(fraction)0/1, pixel-aspect-ratio=(fraction)1/1${color}`;
    if (caps !== this.#videoCaps) {
      w.write(gdpCaps(caps));
      if (this.#videoCaps === '') w.write(gdpTimeSegment());
      this.#videoCaps = caps;
    }
    w.write(gdpBufferHeader(frame.data.length, ptsNs, this.#frameNs));
    w.write(frame.data);
    this.#lastVideoPtsNs = ptsNs;
    this.#lastVideoWriteAtUs = this.#now();
    this.stats.bytesWritten += frame.data.length + 62;
    if (repeat) this.stats.videoFramesRepeated++;
    else {
      this.stats.videoFramesWritten++;
      this.stats.firstVideoPtsUs ??= frame.ptsUs;
    }
  }
}
