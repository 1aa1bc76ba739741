import { join } from 'node:path';
import { DirectFileOutput, EncodedFileOutput, EncodedFileType, FileOutput, MediaSource, Output, ParticipantVideo, StartEgressRequest } from 'livekit-server-sdk';
import { AudioChannel, AudioConfig, AudioRoute } from '@livekit/protocol';
import type { Starter } from './handler-cpu.js';

/** SDK-source egresses of bench/sdk-sources (and bench/admission-costs), by name; p1 and p2 publish. */
export const SDK_STARTERS: Record<string, Starter> = {
  'track-audio': (env, room, [p]) => env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'bench-track.ogg') }), p?.trackSids.audio ?? ''),
  'track-video': (env, room, [p]) => env.egress.startTrackEgress(room, new DirectFileOutput({ filepath: join(env.dir, 'bench-track-video') }), p?.trackSids.video ?? ''),
  'track-composite': (env, room, [p]) =>
    env.egress.startTrackCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-tc.mp4') }) }, { audioTrackId: p?.trackSids.audio ?? '', videoTrackId: p?.trackSids.video ?? '' }),
  'room-audio': (env, room) => env.egress.startRoomCompositeEgress(room, { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-room-audio.ogg'), fileType: EncodedFileType.OGG }) }, { audioOnly: true }),
  participant: (env, room) => env.egress.startParticipantEgress(room, 'p1', { file: new EncodedFileOutput({ filepath: join(env.dir, 'bench-participant.mp4'), fileType: EncodedFileType.MP4 }) }),
  // v2 media: p1's camera, p1's audio on the left and p2's on the right (two decodes, the mixer).
  media: (env, room) =>
    env.egress.startEgress(
      new StartEgressRequest({
        roomName: room,
        source: {
          case: 'media',
          value: new MediaSource({
            video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p1' }) },
            audio: new AudioConfig({
              routes: [new AudioRoute({ match: { case: 'participantIdentity', value: 'p1' }, channel: AudioChannel.LEFT }), new AudioRoute({ match: { case: 'participantIdentity', value: 'p2' }, channel: AudioChannel.RIGHT })],
            }),
          }),
        },
        outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: join(env.dir, 'bench-media.mp4') }) } })],
      }),
    ),
};
