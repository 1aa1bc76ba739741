import { ParticipantInfo_Kind } from '@livekit/protocol';
import { RoomServiceClient } from 'livekit-server-sdk';
import { logger } from '../log.js';
import type { RecorderCredentials } from './template-source.js';

/**
 * Why a template page said END_RECORDING. A template only knows that its room connection ended;
 * the server knows why, so we ask it (any template works, custom ones included):
 * - the room is gone (closed after its departure timeout, or deleted) → `room_closed`: the
 *   recording completes normally;
 * - someone else now holds the recorder's identity (= egress id) → `duplicate_identity`: the
 *   original exits silently (no further status, nothing uploaded);
 * - the room is still there without the recorder → `connection_lost`: the recording ended early,
 *   FAILED `connection to room failed`, with the partial file delivered.
 * - the server cannot be reached (it died: the page's client gave up reconnecting to it) →
 *   `connection_lost` too: nothing says the room ended, the recorder lost it.
 * Without API credentials nothing can be asked and the end is taken as `room_closed` (what the
 * original does for every template).
 */

export type RoomEndCause = 'room_closed' | 'duplicate_identity' | 'connection_lost';

const log = logger('room');

/** livekit-server's HTTP API URL for its WebSocket URL. */
export function httpUrlOf(wsUrl: string): string {
  return wsUrl.replace(/^ws(s?):\/\//i, 'http$1://');
}

export async function classifyRoomEnd(wsUrl: string, creds: RecorderCredentials, roomName: string, egressId: string): Promise<RoomEndCause> {
  if (creds.apiKey === '' || creds.apiSecret === '' || roomName === '' || wsUrl === '') return 'room_closed';
  const client = new RoomServiceClient(httpUrlOf(wsUrl), creds.apiKey, creds.apiSecret);
  const ask = async (): Promise<RoomEndCause> => {
    const rooms = await client.listRooms([roomName]);
    if (rooms.length === 0) return 'room_closed';
    const participants = await client.listParticipants(roomName);
    if (participants.some((p) => p.identity === egressId)) return 'duplicate_identity';
    // A room left to hidden participants (other recorders) is closing: the recorder being dropped
    // with it is not a connection failure.
    if (!participants.some((p) => !p.permission?.hidden && p.kind !== ParticipantInfo_Kind.EGRESS)) return 'room_closed';
    return 'connection_lost';
  };
  try {
    const first = await ask();
    if (first !== 'connection_lost') return first;
    // A room being deleted can still be listed for a moment after its participants were told.
    await new Promise((r) => setTimeout(r, 1000));
    return await ask();
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    if (/not.?found|does not exist/i.test(msg)) return 'room_closed';
    if (unreachable(err)) {
      log.warn(`livekit-server unreachable when the room connection ended: ${causeText(err)} [egress:${egressId}]`);
      return 'connection_lost';
    }
    log.warn(`could not ask the server why the room connection ended: ${msg} [egress:${egressId}]`);
    return 'room_closed';
  }
}

/** Network-level failure of the API call (no HTTP answer at all): the server is down or unreachable. */
function unreachable(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_SOCKET)$/.test(code);
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  return `${(err as Error).message}${cause?.code ? ` (${String(cause.code)})` : ''}`;
}
