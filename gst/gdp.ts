/**
 * GStreamer Data Protocol (GDP 1.0) framing, written by us and read by `gdpdepay`. Each packet is a
 * 62-byte big-endian header plus a payload. We use it because it carries each buffer's capture
 * timestamp (PTS) and duration into the pipeline, which raw fd input (`rawvideoparse`) cannot:
 * A/V sync then holds by construction instead of by frame counting.
 *
 * Header layout (checked against the output of `gdppay` on GStreamer 1.22):
 *   [0] major=1 [1] minor=0 [2] flags (0: no CRCs) [3] pad
 *   [4..5] payload type (1 buffer, 2 caps, 64+event-type for events)
 *   [6..9] payload length
 *   [10..17] PTS ns   [18..25] duration ns   [26..33] offset   [34..41] offset_end
 *   [42..43] buffer flags   [44..57] reserved   [58..59] header CRC   [60..61] payload CRC
 * Caps and event payloads are NUL-terminated strings.
 */

export const GDP_HEADER_LENGTH = 62;
const PAYLOAD_BUFFER = 1;
const PAYLOAD_CAPS = 2;
const PAYLOAD_EVENT_BASE = 64;
/** GST_EVENT_STREAM_START = MAKE_TYPE(40, DOWNSTREAM|SERIALIZED|STICKY). */
const EVENT_STREAM_START = (40 << 8) | 0x0e;
/** GST_EVENT_SEGMENT = MAKE_TYPE(70, DOWNSTREAM|SERIALIZED|STICKY). */
const EVENT_SEGMENT = (70 << 8) | 0x0e;
const NONE = 0xffffffffffffffffn;

/** GST_BUFFER_FLAG_DISCONT (1 << 6 of GstMiniObject flags offset 4 → 0x40). */
export const BUFFER_FLAG_DISCONT = 0x40;

function header(payloadType: number, payloadLength: number, ptsNs: bigint, durationNs: bigint, flags: number): Buffer {
  const h = Buffer.alloc(GDP_HEADER_LENGTH);
  h[0] = 1;
  h[1] = 0;
  h.writeUInt16BE(payloadType, 4);
  h.writeUInt32BE(payloadLength, 6);
  h.writeBigUInt64BE(ptsNs, 10);
  h.writeBigUInt64BE(durationNs, 18);
  h.writeBigUInt64BE(NONE, 26);
  h.writeBigUInt64BE(NONE, 34);
  h.writeUInt16BE(flags, 42);
  return h;
}

function stringPacket(payloadType: number, text: string): Buffer {
  const payload = Buffer.from(text + '\0', 'utf8');
  return Buffer.concat([header(payloadType, payload.length, NONE, NONE, 0), payload]);
}

/** A caps packet, e.g. `video/x-raw, format=(string)I420, width=(int)1280, …`. */
export function gdpCaps(caps: string): Buffer {
  return stringPacket(PAYLOAD_CAPS, caps);
}

export function gdpStreamStart(streamId: string): Buffer {
  return stringPacket(
    PAYLOAD_EVENT_BASE + EVENT_STREAM_START,
    `GstEventStreamStart, stream-id=(string)${streamId}, flags=(GstStreamFlags)GST_STREAM_FLAG_NONE, group-id=(uint)1;`,
  );
}

/** An open-ended TIME segment starting at 0: our PTS are running times from the recording start. */
export function gdpTimeSegment(): Buffer {
  const seg =
    'segment, flags=(GstSegmentFlags)GST_SEGMENT_FLAG_NONE, rate=(double)1, applied-rate=(double)1, ' +
    'format=(GstFormat)time, base=(guint64)0, offset=(guint64)0, start=(guint64)0, ' +
    'stop=(guint64)18446744073709551615, time=(guint64)0, position=(guint64)0, duration=(guint64)18446744073709551615;';
  return stringPacket(PAYLOAD_EVENT_BASE + EVENT_SEGMENT, `GstEventSegment, segment=(GstSegment)"${seg}";`);
}

/**
 * The header of one buffer packet; write it followed by the payload (kept separate so large video
 * frames are not copied just to prepend 62 bytes).
 */
export function gdpBufferHeader(payloadLength: number, ptsNs: bigint, durationNs: bigint, flags = 0): Buffer {
  return header(PAYLOAD_BUFFER, payloadLength, ptsNs, durationNs, flags);
}

/** GST_BUFFER_FLAG_DELTA_UNIT (GST_MINI_OBJECT_FLAG_LAST << 9): not a keyframe. */
export const BUFFER_FLAG_DELTA_UNIT = 0x2000;
