import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaPlaylist } from '../../main/output/hls-playlist.js';
import { buildLaunchArgs, parseFragmentMessage, parseImageMessage } from '../../gst/output-pipeline.js';
import { parsePlaylist } from '../support/hls.js';

const seg = (i: number, d = 4): { programDateTime: Date; durationS: number; uri: string } => ({
  programDateTime: new Date(Date.UTC(2023, 4, 3, 22, 55, 4, 814) + i * 4000),
  durationS: d,
  uri: `p_${String(i).padStart(5, '0')}.ts`,
});

test('EVENT playlist: the original writer format (version 4, PDT with ms, EXTINF 3 decimals, ENDLIST on close)', () => {
  const p = new MediaPlaylist({ kind: 'event', targetDurationS: 4 });
  p.append(seg(0));
  p.append(seg(1, 2.0334));
  assert.equal(
    p.render(),
    [
      '#EXTM3U',
      '#EXT-X-VERSION:4',
      '#EXT-X-PLAYLIST-TYPE:EVENT',
      '#EXT-X-ALLOW-CACHE:NO',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-PROGRAM-DATE-TIME:2023-05-03T22:55:04.814Z',
      '#EXTINF:4.000,',
      'p_00000.ts',
      '#EXT-X-PROGRAM-DATE-TIME:2023-05-03T22:55:08.814Z',
      '#EXTINF:2.033,',
      'p_00001.ts',
      '',
    ].join('\n'),
  );
  p.close();
  assert.ok(p.render().endsWith('p_00001.ts\n#EXT-X-ENDLIST\n'));
  assert.throws(() => p.append(seg(2)));
});

test('live playlist: no type line, the newest 5 segments, MEDIA-SEQUENCE counts the dropped ones', () => {
  const p = new MediaPlaylist({ kind: 'live', targetDurationS: 4 });
  for (let i = 0; i < 3; i++) p.append(seg(i));
  let parsed = parsePlaylist(p.render());
  assert.equal(parsed.type, '');
  assert.equal(parsed.mediaSequence, 0);
  assert.equal(parsed.segments.length, 3);
  for (let i = 3; i < 8; i++) p.append(seg(i));
  p.close();
  parsed = parsePlaylist(p.render());
  assert.equal(parsed.mediaSequence, 3);
  assert.deepEqual(
    parsed.segments.map((s) => s.uri),
    ['p_00003.ts', 'p_00004.ts', 'p_00005.ts', 'p_00006.ts', 'p_00007.ts'],
  );
  assert.ok(parsed.endList);
  assert.equal(p.segmentCount, 8);
});

test('splitmuxsink fragment messages as gst-launch -m prints them', () => {
  const line =
    'Got message #195 from element "seg" (element): splitmuxsink-fragment-closed, location=(string)/tmp/egress/EG_x/hls/seg_00000.ts, running-time=(guint64)2000000000, sink=(GstElement)"\\(GstFileSink\\)\\ sink";';
  assert.deepEqual(parseFragmentMessage(line), { kind: 'closed', location: '/tmp/egress/EG_x/hls/seg_00000.ts', runningTimeNs: 2_000_000_000n });
  const opened = parseFragmentMessage('Got message #1 from element "seg" (element): splitmuxsink-fragment-opened, location=(string)"/tmp/a\\ b/seg_00001.ts", running-time=(guint64)0, sink=(GstElement)x;');
  assert.deepEqual(opened, { kind: 'opened', location: '/tmp/a b/seg_00001.ts', runningTimeNs: 0n });
  assert.equal(parseFragmentMessage('Setting pipeline to PLAYING ...'), null);
});

test('one encode fans out: one x264enc and one encoder per audio, a tee branch per output', () => {
  const args = buildLaunchArgs({
    video: { width: 1280, height: 720, framerate: 30, bitrateKbps: 3000, profile: 'main', keyFrameIntervalS: 4, threads: 0, vbvBufferMs: 4000 },
    audio: { codec: 'aac', bitrateKbps: 128, sampleRate: 44100 },
    file: { container: 'mp4', location: '/tmp/out dir/a.mp4' },
    segments: { locationPattern: '/tmp/x/seg_%05d.ts', segmentDurationS: 4 },
  });
  const desc = args.join(' ');
  assert.equal(args.filter((a) => a === 'x264enc').length, 1);
  assert.equal(args.filter((a) => a === 'voaacenc').length, 1);
  assert.ok(args.includes('location=/tmp/out dir/a.mp4'), 'a path with a space stays one argument');
  assert.ok(args.includes('location=/tmp/x/seg_%05d.ts'));
  assert.ok(args.includes('-m'), 'bus messages printed (segment boundaries)');
  assert.match(desc, /max-size-time=4000000000 send-keyframe-requests=true/);
  assert.match(desc, /vbv-buf-capacity=4000/);
  assert.match(desc, /key-int-max=120 option-string=scenecut=0/);
  assert.equal((desc.match(/vtee\. !/g) ?? []).length, 2);
  assert.equal((desc.match(/atee\. !/g) ?? []).length, 2);
  // file only: no -m
  assert.ok(!buildLaunchArgs({ video: null, audio: { codec: 'opus', bitrateKbps: 128, sampleRate: 48000 }, file: { container: 'ogg', location: '/a.ogg' } }).includes('-m'));
});

test('thumbnails hang off the raw video before the encoder; images only needs no encoder', () => {
  const video = { width: 1280, height: 720, framerate: 30, bitrateKbps: 3000, profile: 'main' as const, keyFrameIntervalS: 0, threads: 0 };
  const img = { name: 'images_0', locationPattern: '/tmp/i/img_%05d.jpeg', intervalS: 5, width: 640, height: 360 };
  const both = buildLaunchArgs({ video, audio: null, file: { container: 'mp4', location: '/a.mp4' }, images: [img] }).join(' ');
  assert.match(both, /tee name=rawtee .*rawtee\. ! queue [^!]*leaky=downstream ! videorate ! video\/x-raw,framerate=1\/5 .*width=640,height=360.* jpegenc ! multifilesink name=images_0 location=\/tmp\/i\/img_%05d\.jpeg post-messages=true/);
  assert.match(both, /rawtee\. ! queue [^!]* ! x264enc/);
  const only = buildLaunchArgs({ video, audio: null, file: null, images: [img, { ...img, name: 'images_1', width: 0, height: 0 }] });
  assert.ok(!only.includes('x264enc'));
  assert.match(only.join(' '), /images_1 .*|width=1280,height=720/);
  const msg = parseImageMessage(
    'Got message #111 from element "images_0" (element): GstMultiFileSink, filename=(string)/tmp/i/img_00001.jpeg, index=(int)1, timestamp=(guint64)5000000000, stream-time=(guint64)5000000000, running-time=(guint64)5000000000, duration=(guint64)5000000000, offset=(guint64)18446744073709551615, offset-end=(guint64)18446744073709551615;',
  );
  assert.deepEqual(msg, { sink: 'images_0', filename: '/tmp/i/img_00001.jpeg', index: 1, runningTimeNs: 5_000_000_000n });
});
