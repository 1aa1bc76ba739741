/**
 * MediaSelection against a scripted room (no livekit-server): which tracks a v2 media source takes
 * and on which channel — first matching route wins, participant kinds across the two numberings
 * (livekit.ParticipantInfo.Kind vs rtc-node's), capture_all ignoring routes, prefer_screen_share
 * without a camera fallback, tracks published later and republished — and that nothing is taken
 * before the named participants and tracks are there.
 */
import '../../main/sdk/rtc-env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ParticipantKind, RoomEvent, TrackKind, TrackSource } from '@livekit/rtc-node';
import type { MediaSourcePlan } from '../../main/contracts/pipeline.js';
import { MediaSelection } from '../../main/sdk/media-selection.js';
import type { AudioMixer, AudioRoute } from '../../main/sdk/audio-mixer.js';
import type { RoomSource } from '../../main/sdk/room-source.js';
import type { TrackSlots } from '../../main/sdk/track-slots.js';

interface FakePub {
  sid: string;
  kind: TrackKind;
  source: TrackSource;
  track: { sid: string; kind: TrackKind } | undefined;
  subscribed: boolean;
  setSubscribed(on: boolean): void;
}

interface FakeParticipant {
  identity: string;
  kind: ParticipantKind;
  trackPublications: Map<string, FakePub>;
}

/** A room whose participants and tracks the test adds; subscribing delivers TrackSubscribed at once. */
function fakeRoom() {
  const room = Object.assign(new EventEmitter(), { remoteParticipants: new Map<string, FakeParticipant>() });
  const join = (identity: string, kind = ParticipantKind.STANDARD): FakeParticipant => {
    const p = { identity, kind, trackPublications: new Map<string, FakePub>() };
    room.remoteParticipants.set(identity, p);
    room.emit(RoomEvent.ParticipantConnected, p);
    return p;
  };
  const publish = (p: FakeParticipant, sid: string, kind: TrackKind, source: TrackSource): FakePub => {
    const pub: FakePub = {
      sid,
      kind,
      source,
      track: undefined,
      subscribed: false,
      setSubscribed(on: boolean) {
        this.subscribed = on;
        if (on && !this.track) {
          this.track = { sid, kind };
          room.emit(RoomEvent.TrackSubscribed, this.track, this, p);
        }
      },
    };
    p.trackPublications.set(sid, pub);
    room.emit(RoomEvent.TrackPublished, pub, p);
    return pub;
  };
  const unpublish = (p: FakeParticipant, sid: string): void => {
    const pub = p.trackPublications.get(sid);
    p.trackPublications.delete(sid);
    room.emit(RoomEvent.TrackUnpublished, pub, p);
  };
  return { room, join, publish, unpublish };
}

function harness(plan: Omit<MediaSourcePlan, 'kind' | 'roomName'>) {
  const r = fakeRoom();
  const mixed = new Map<string, AudioRoute>();
  let video: string | null = null;
  const source = { room: r.room, readAudio: (t: { sid: string }) => ({ sid: t.sid, ended: Promise.resolve(), cancel: async () => undefined }) } as unknown as RoomSource;
  const mixer = { addInput: (id: string, route: AudioRoute) => mixed.set(id, route), removeInput: (id: string) => mixed.delete(id), push: () => undefined } as unknown as AudioMixer;
  const slots = {
    attach: (t: { sid: string; kind: TrackKind }) => {
      if (t.kind !== TrackKind.KIND_VIDEO || video) return false;
      video = t.sid;
      return true;
    },
    detach: (sid: string) => {
      if (video !== sid) return null;
      video = null;
      return 'video';
    },
    has: (sid: string) => video === sid,
  } as unknown as TrackSlots;
  const selection = new MediaSelection(source, slots, plan.audio ? mixer : null, { kind: 'media', roomName: 'r', ...plan });
  return { ...r, selection, mixed, video: () => video };
}

const A = TrackKind.KIND_AUDIO;
const V = TrackKind.KIND_VIDEO;
const MIC = TrackSource.SOURCE_MICROPHONE;
const CAM = TrackSource.SOURCE_CAMERA;
const SCREEN = TrackSource.SOURCE_SCREENSHARE;

test('routes: first match wins (track id, identity, kind — connector and bridge in rtc-node\'s numbering); unmatched audio is not taken; later and republished tracks follow', async () => {
  const h = harness({
    video: { identity: 'alice', screenShare: false },
    audio: {
      captureAll: false,
      routes: [
        { match: { trackId: 'TR_bob_mic' }, channel: 'right' },
        { match: { identity: 'alice' }, channel: 'left' },
        { match: { participantKind: 'agent' }, channel: 'both' },
        { match: { participantKind: 'connector' }, channel: 'left' },
        { match: { participantKind: 'bridge' }, channel: 'right' },
        { match: { none: true }, channel: 'both' },
      ],
    },
  });
  const alice = h.join('alice');
  h.publish(alice, 'TR_alice_mic', A, MIC);
  h.publish(alice, 'TR_alice_screen', V, SCREEN);
  h.publish(alice, 'TR_alice_cam', V, CAM);
  const bob = h.join('bob');
  h.publish(bob, 'TR_bob_mic', A, MIC);
  h.publish(bob, 'TR_bob_cam', V, CAM);
  const agent = h.join('agent', ParticipantKind.AGENT);
  h.publish(agent, 'TR_agent_mic', A, MIC);
  const carol = h.join('carol');
  h.publish(carol, 'TR_carol_mic', A, MIC);
  await h.selection.begin();
  assert.deepEqual(Object.fromEntries(h.mixed), { TR_alice_mic: 'left', TR_bob_mic: 'right', TR_agent_mic: 'both' });
  assert.equal(h.video(), 'TR_alice_cam');
  // joining later: a connector (rtc-node numbers it 5, the protocol 7) and a bridge (6 vs 8)
  const sipper = h.join('phone', ParticipantKind.CONNECTOR);
  h.publish(sipper, 'TR_phone', A, MIC);
  const rtsp = h.join('cam', ParticipantKind.BRIDGE);
  h.publish(rtsp, 'TR_rtsp', A, MIC);
  assert.equal(h.mixed.get('TR_phone'), 'left');
  assert.equal(h.mixed.get('TR_rtsp'), 'right');
  // the camera unpublished → black; republished (new sid) → taken again
  h.unpublish(alice, 'TR_alice_cam');
  assert.equal(h.video(), null);
  h.publish(alice, 'TR_alice_cam2', V, CAM);
  assert.equal(h.video(), 'TR_alice_cam2');
  h.unpublish(alice, 'TR_alice_mic');
  assert.equal(h.mixed.has('TR_alice_mic'), false);
  h.publish(alice, 'TR_alice_mic2', A, MIC);
  assert.equal(h.mixed.get('TR_alice_mic2'), 'left');
  assert.equal(carol.trackPublications.get('TR_carol_mic')?.subscribed, false, 'unmatched audio is not subscribed');
  h.selection.close();
  assert.equal(h.mixed.size, 0);
});

test('capture_all: every audio track on both channels (routes ignored); video by track id only; prefer_screen_share takes no camera', async () => {
  const h = harness({ video: { trackId: 'TR_bob_cam' }, audio: { captureAll: true, routes: [] } });
  const alice = h.join('alice');
  h.publish(alice, 'TR_alice_mic', A, MIC);
  h.publish(alice, 'TR_alice_cam', V, CAM);
  const bob = h.join('bob', ParticipantKind.AGENT);
  h.publish(bob, 'TR_bob_mic', A, MIC);
  h.publish(bob, 'TR_bob_cam', V, CAM);
  await h.selection.begin();
  assert.deepEqual(Object.fromEntries(h.mixed), { TR_alice_mic: 'both', TR_bob_mic: 'both' });
  assert.equal(h.video(), 'TR_bob_cam');
  assert.equal(alice.trackPublications.get('TR_alice_cam')?.subscribed, false);
  h.selection.close();

  const s = harness({ video: { identity: 'alice', screenShare: true }, audio: null });
  const a2 = s.join('alice');
  s.publish(a2, 'TR_cam', V, CAM);
  await s.selection.begin();
  assert.equal(s.video(), null, 'no fallback to the camera');
  s.publish(a2, 'TR_screen', V, SCREEN);
  assert.equal(s.video(), 'TR_screen');
  s.selection.close();
});

test('nothing is taken before the named participants and tracks are there', async () => {
  const h = harness({ video: { identity: 'alice', screenShare: false }, audio: { captureAll: false, routes: [{ match: { trackId: 'TR_late' }, channel: 'left' }, { match: { participantKind: 'standard' }, channel: 'right' }] } });
  const bob = h.join('bob');
  h.publish(bob, 'TR_bob_mic', A, MIC);
  const begun = h.selection.begin();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.mixed.size, 0, 'bob matches a route, but alice and TR_late are not there yet');
  const alice = h.join('alice');
  h.publish(alice, 'TR_alice_cam', V, CAM);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.video(), null, 'TR_late is still missing');
  h.publish(bob, 'TR_late', A, MIC);
  await begun;
  assert.deepEqual(Object.fromEntries(h.mixed), { TR_bob_mic: 'right', TR_late: 'left' });
  assert.equal(h.video(), 'TR_alice_cam');
  h.selection.close();
});
