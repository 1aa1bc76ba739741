/*
 * Lip sync for every participant, whatever their SDK. LiveKit sends each subscribed track in its own
 * MediaStream (`<participant sid>|<track sid>`) unless the publisher grouped them with a `stream`
 * name, and the browser only synchronises audio and video that share a MediaStream (its "sync
 * group", aligned through the senders' RTCP reports). Ungrouped, a participant's voice and picture
 * play with whatever delays their jitter buffers happen to have: measured here with rtc-node
 * publishers, the voice came out 130–150 ms after the picture and wandered by tens of ms per minute.
 * Rewriting the subscriber's remote SDP so that every track of a participant lands in one stream
 * (`<participant sid>|<participant sid>`) makes the browser play them in sync, as it does for a
 * camera and microphone published together. livekit-client still finds each track: the msid's track
 * id is the track sid (see livekit-client's extractTrackSid).
 */

/** `msid:<PA_…>|<TR_…> <track>` → `msid:<PA_…>|<PA_…> <track>`, in a=msid and a=ssrc lines alike. */
export function groupParticipantStreams(sdp: string): string {
  return sdp.replace(/(msid:)(PA_[^|\s]+)\|TR_[^\s]+/g, (_m, prefix: string, participant: string) => `${prefix}${participant}|${participant}`);
}

/** Installs the rewrite on every RTCPeerConnection of this page (call before connecting). */
export function installLipSync(): void {
  const proto = RTCPeerConnection.prototype;
  // lib.dom types the method with its deprecated callback overload; livekit-client uses the promise form.
  const original = proto.setRemoteDescription as (this: RTCPeerConnection, desc?: RTCSessionDescriptionInit) => Promise<void>;
  const patched = function (this: RTCPeerConnection, desc?: RTCSessionDescriptionInit): Promise<void> {
    if (desc?.sdp && (desc.type === 'offer' || desc.type === 'answer')) {
      return original.call(this, { type: desc.type, sdp: groupParticipantStreams(desc.sdp) });
    }
    return original.call(this, desc);
  };
  proto.setRemoteDescription = patched as typeof proto.setRemoteDescription;
}

/**
 * Steady playout. A conversation wants the smallest jitter buffer that hides the network's jitter,
 * so the browser grows and shrinks it as it goes, audio and video each on their own schedule, and the
 * sync between them catches up afterwards — every change shows in a recording as A/V moving by a frame
 * or more. A recorder talks back to no one: it asks every receiver for the same generous target
 * instead, so both buffers sit at one delay that covers the jitter, and stay there. The page URL's
 * `playout_target_ms` changes it (0 leaves the browser's own choice), for measuring.
 */
export const PLAYOUT_TARGET_MS = Number(new URLSearchParams(globalThis.location?.search ?? '').get('playout_target_ms') ?? 200);

export function holdSteadyPlayout(receiver: RTCRtpReceiver | undefined): void {
  if (receiver && 'jitterBufferTarget' in receiver && PLAYOUT_TARGET_MS > 0) receiver.jitterBufferTarget = PLAYOUT_TARGET_MS;
}
