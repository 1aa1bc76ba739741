import type { Room } from 'livekit-client';

/**
 * Whether media still arrives while only the signal connection is being retried. A signal-only
 * reconnect usually leaves the media path alone (and what it carries is recorded), but when the
 * server itself is gone the media stops with it and livekit-client may keep retrying the signal
 * for many seconds before it says the media is being reconnected. This watches the bytes received
 * on every subscribed track and calls `onStalled` once when none has arrived for `stallMs`.
 */
export function watchMediaDuringSignalReconnect(room: Room, onStalled: () => void, stallMs = 500, periodMs = 250): () => void {
  let lastBytes = -1;
  let lastProgressAt = performance.now();
  let done = false;
  const receivedBytes = async (): Promise<number> => {
    let sum = 0;
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.trackPublications.values()) {
        const receiver = pub.track?.receiver;
        if (!receiver) continue;
        const stats = await receiver.getStats().catch(() => null);
        stats?.forEach((s: { type?: string; bytesReceived?: number }) => {
          if (s.type === 'inbound-rtp' && typeof s.bytesReceived === 'number') sum += s.bytesReceived;
        });
      }
    }
    return sum;
  };
  const timer = setInterval(() => {
    void receivedBytes().then((bytes) => {
      if (done) return;
      const now = performance.now();
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastProgressAt = now;
      } else if (now - lastProgressAt >= stallMs) {
        stop();
        onStalled();
      }
    });
  }, periodMs);
  const stop = (): void => {
    done = true;
    clearInterval(timer);
  };
  return stop;
}
