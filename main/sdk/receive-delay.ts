import type { Room } from '@livekit/rtc-node';
import { logger } from '../log.js';

/**
 * How long the receiving side holds media before rtc-node hands it out, per kind, so the room source
 * can stamp audio and video at the instant they came off the network instead of at their playout,
 * which libwebrtc delays by different amounts for each kind (measured: rtc-node does not lip-sync them).
 *
 * Measured on a 2-publisher loopback room (bench and tests here): NetEQ holds audio 29–39 ms before
 * playout; a video frame spends 13–14 ms in its jitter buffer and decoder and is stamped with a
 * render time 9–10 ms after it is handed out. Stamped at playout and render time as they come,
 * a flash and its beep landed 41–63 ms apart in participant and track composite recordings (video
 * first). The figures are read from libwebrtc's inbound-rtp stats every few seconds:
 * - audio: `jitterBufferDelay / jitterBufferEmittedCount` (the mean wait of a sample in NetEQ), plus
 *   one packet's duration (20 ms, the Opus and G.711 packet time of LiveKit's clients and of
 *   browsers): a packet leaves its sender only once its last sample is captured, so every sample
 *   spends that long before it can travel at all (video frames leave as soon as they are encoded);
 * - video: `totalProcessingDelay / framesDecoded` (jitter buffer and decoder); the render time's lead
 *   over the hand-out is measured per frame by the room source (`noteVideoLead`).
 * A figure replaces the one in use when it moved by more than CHANGE_US. Video frames take the
 * current figure; an audio track takes it at its first chunk and where its timeline re-anchors
 * (room-source.ts), never while it plays on, where a shift would cut or pad it (a click).
 */

const log = logger('receive-delay');

/** One packet of Opus or G.711 as LiveKit clients and browsers send them. */
export const AUDIO_PACKET_US = 20_000;
/** Before the first reading: the loopback figures above. */
const DEFAULT_AUDIO_HOLD_US = 30_000;
const DEFAULT_VIDEO_HOLD_US = 13_500;
const DEFAULT_VIDEO_LEAD_US = 9_500;
/** Readings: every 2 s for the first 10 s, then every 10 s. */
const EARLY_POLL_MS = 2_000;
const LATE_POLL_MS = 10_000;
const EARLY_POLLS = 5;
/** A new figure replaces the one in use only when it differs by more than this. */
const CHANGE_US = 5_000;
/** Figures outside this range are not a jitter buffer (a stats glitch); they are ignored. */
const MAX_HOLD_US = 1_000_000;

type SessionStats = Awaited<ReturnType<Room['getRtcStats']>>;

export class ReceiveDelays {
  /** Subtracted from audio playout stamps. */
  audioUs = DEFAULT_AUDIO_HOLD_US + AUDIO_PACKET_US;
  /** Subtracted from video render-time stamps: jitter buffer, decoder and the render time's lead. */
  videoUs = DEFAULT_VIDEO_HOLD_US + DEFAULT_VIDEO_LEAD_US;
  #videoLeadUs = DEFAULT_VIDEO_LEAD_US;
  #videoLeadWindowUs = 0;
  #timer: NodeJS.Timeout | null = null;
  #polls = 0;
  #stopped = false;

  constructor(
    private readonly readStats: () => Promise<SessionStats>,
    private readonly egressId: string,
  ) {}

  /** Starts the readings (idempotent). */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * A decoded frame's render time less its hand-out instant. The largest in a reading's window is
   * taken: event-loop delays only make a hand-out look later, never earlier.
   */
  noteVideoLead(leadUs: number): void {
    if (leadUs > this.#videoLeadWindowUs && leadUs < MAX_HOLD_US) this.#videoLeadWindowUs = leadUs;
  }

  #schedule(): void {
    const ms = this.#polls < EARLY_POLLS ? EARLY_POLL_MS : LATE_POLL_MS;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#polls++;
      void this.#read().finally(() => {
        if (!this.#stopped) this.#schedule();
      });
    }, ms);
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    let stats: SessionStats;
    try {
      stats = await this.readStats();
    } catch (err) {
      log.debug(`stats not read: ${(err as Error).message} [egress:${this.egressId}]`);
      return;
    }
    const audio: number[] = [];
    const video: number[] = [];
    // rtc-node 1.1.0 lists a subscriber's inbound streams under publisherStats: both are read.
    for (const s of [...stats.subscriberStats, ...stats.publisherStats]) {
      if (s.stats.case !== 'inboundRtp') continue;
      const { stream, inbound } = s.stats.value;
      if (!inbound) continue;
      if (stream?.kind === 'audio') {
        const n = Number(inbound.jitterBufferEmittedCount ?? 0n);
        if (n > 0) audio.push(((inbound.jitterBufferDelay ?? 0) / n) * 1e6);
      } else if (stream?.kind === 'video') {
        const n = inbound.framesDecoded ?? 0;
        if (n > 0) video.push(((inbound.totalProcessingDelay ?? 0) / n) * 1e6);
      }
    }
    if (this.#videoLeadWindowUs > 0) this.#videoLeadUs = this.#videoLeadWindowUs;
    this.#videoLeadWindowUs = 0;
    const mean = (xs: number[]): number | null => {
      const ok = xs.filter((x) => x >= 0 && x < MAX_HOLD_US);
      return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
    };
    const audioHold = mean(audio);
    const videoHold = mean(video);
    let changed = false;
    if (audioHold !== null && Math.abs(audioHold + AUDIO_PACKET_US - this.audioUs) > CHANGE_US) {
      this.audioUs = Math.round(audioHold + AUDIO_PACKET_US);
      changed = true;
    }
    if (videoHold !== null && Math.abs(videoHold + this.#videoLeadUs - this.videoUs) > CHANGE_US) {
      this.videoUs = Math.round(videoHold + this.#videoLeadUs);
      changed = true;
    }
    // The first reading is logged as well, changed or not: the log says what each recording used.
    if (changed || this.#polls === 1) {
      log.info(
        `receive delays: audio ${(this.audioUs / 1000).toFixed(1)} ms (NetEQ ${audioHold === null ? '–' : (audioHold / 1000).toFixed(1)} + packet ${AUDIO_PACKET_US / 1000}), ` +
          `video ${(this.videoUs / 1000).toFixed(1)} ms (jitter buffer + decode ${videoHold === null ? '–' : (videoHold / 1000).toFixed(1)} + render lead ${(this.#videoLeadUs / 1000).toFixed(1)}) [egress:${this.egressId}]`,
      );
    }
  }
}
