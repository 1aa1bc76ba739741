import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EgressError } from '../../main/contracts/errors.js';
import {
  checkFileRetry,
  checkSegmentsRetry,
  cleanPath,
  filenameContext,
  fileStoragePath,
  formatTime,
  formatUtc,
  imageFilename,
  imageNaming,
  segmentFilename,
  segmentNaming,
  stripKnownExtension,
} from '../../main/request/filename.js';

// 2022-10-04T01:13:06.789 local time (the README's example timestamp)
const NOW = new Date(2022, 9, 4, 1, 13, 6, 789);
const room = filenameContext({ roomName: 'testroom', roomId: 'RM_10719607', now: NOW });
const web = filenameContext({ now: NOW });

test('{time} is local 2006-01-02T150405', () => {
  assert.equal(formatTime(NOW), '2022-10-04T011306');
});

test('{utc} is real UTC YYYYMMDDhhmmss + ms', () => {
  assert.equal(formatUtc(new Date(Date.UTC(2006, 0, 2, 15, 4, 5, 789))), '20060102150405789');
  assert.equal(formatUtc(new Date(Date.UTC(2026, 10, 24, 6, 41, 51, 7))), '20261124064151007');
});

test('README filename examples (room-based identifier)', () => {
  const cases: [string, string, string][] = [
    ['', '.mp4', 'testroom-2022-10-04T011306.mp4'],
    ['livekit-recordings/', '.mp4', 'livekit-recordings/testroom-2022-10-04T011306.mp4'],
    ['{room_name}/{time}', '.mp4', 'testroom/2022-10-04T011306.mp4'],
    // {publisher_identity} does not resolve for a room composite: stays literally
    ['{room_id}-{publisher_identity}.mp4', '.mp4', 'RM_10719607-{publisher_identity}.mp4'],
  ];
  for (const [input, ext, want] of cases) assert.equal(fileStoragePath(cleanPath(input), ext, room), want, input);
});

test('web egress: identifier web, only {time}/{utc} resolve', () => {
  const cases: [string, string][] = [
    ['', 'web-2022-10-04T011306.mp4'],
    ['out/', 'out/web-2022-10-04T011306.mp4'],
    ['{time}', '2022-10-04T011306.mp4'],
    ['rec-{utc}', `rec-${formatUtc(NOW)}.mp4`],
    ['{room_name}-{time}', '{room_name}-2022-10-04T011306.mp4'],
  ];
  for (const [input, want] of cases) assert.equal(fileStoragePath(cleanPath(input), '.mp4', web), want, input);
});

test('extension rules: wrong known extension replaced, unknown kept', () => {
  const cases: [string, string, string][] = [
    ['x.mp4', '.ogg', 'x.ogg'],
    ['x.dat', '.ogg', 'x.dat.ogg'],
    ['x.ogg', '.ogg', 'x.ogg'],
    ['dir/x.m3u8', '.mp3', 'dir/x.mp3'],
    ['x', '.mp4', 'x.mp4'],
  ];
  for (const [input, ext, want] of cases) assert.equal(fileStoragePath(cleanPath(input), ext, web), want, input);
  assert.equal(stripKnownExtension('a.b.jpeg'), 'a.b');
  assert.equal(stripKnownExtension('a.txt'), 'a.txt');
});

test('path cleaning', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['.', ''],
    ['..', ''],
    ['../../a/b', 'a/b'],
    ['./x/', 'x/'],
    ['a//b/../c', 'a/c'],
    ['a/./b/', 'a/b/'],
    ['/abs/file.mp4', '/abs/file.mp4'],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});

test('retry: default names get -<retry>, {retry} resolves, explicit paths need {retry}', () => {
  const ctx = filenameContext({ now: NOW, retryCount: 2 });
  assert.equal(fileStoragePath('', '.mp4', ctx), 'web-2022-10-04T011306-2.mp4');
  assert.equal(fileStoragePath('dir/', '.mp4', ctx), 'dir/web-2022-10-04T011306-2.mp4');
  assert.equal(fileStoragePath('x-{retry}', '.mp4', ctx), 'x-2.mp4');
  // without a retry, {retry} stays literal
  assert.equal(fileStoragePath('x-{retry}', '.mp4', web), 'x-{retry}.mp4');
  checkFileRetry('', 2);
  checkFileRetry('dir/', 2);
  checkFileRetry('{retry}/x', 2);
  checkFileRetry('x.mp4', 0);
  assert.throws(
    () => checkFileRetry('x.mp4', 1),
    (e: unknown) =>
      e instanceof EgressError &&
      e.message === 'output configuration does not support retry' &&
      e.psrpcCode === 'failed_precondition' &&
      e.httpStatus === 412,
  );
  // segments: explicit prefix needs {retry}; without prefix an explicit playlist does
  checkSegmentsRetry('', '', 1);
  checkSegmentsRetry('p-{retry}', 'playlist', 1);
  checkSegmentsRetry('', 'pl-{retry}', 1);
  assert.throws(() => checkSegmentsRetry('prefix', 'pl-{retry}', 1), /output configuration does not support retry/);
  assert.throws(() => checkSegmentsRetry('', 'playlist', 1), /output configuration does not support retry/);
});

test('segment naming table', () => {
  // prefix, playlist, live → storageDir, playlist file, live file, segment prefix
  const rows: [string, string, string, string, string, string, string][] = [
    ['', 'playlist', '', '', 'playlist.m3u8', '', 'playlist'],
    ['', 'conf_test/playlist', 'conf_test/live_playlist', 'conf_test/', 'playlist.m3u8', 'live_playlist.m3u8', 'playlist'],
    ['filename', '', 'live_playlist2.m3u8', '', 'filename.m3u8', 'live_playlist2.m3u8', 'filename'],
    ['filename', 'playlist', '', '', 'playlist.m3u8', '', 'filename'],
    ['filename', 'conf_test/', '', 'conf_test/', 'filename.m3u8', '', 'filename'],
    ['filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test/', 'playlist', '', 'conf_test/', 'playlist.m3u8', '', 'playlist'],
    ['conf_test/filename', 'playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test/filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test_2/filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'conf_test_2/filename'],
  ];
  for (const [prefix, playlist, live, dir, pl, lpl, seg] of rows) {
    const n = segmentNaming(prefix, playlist, live, web);
    assert.deepEqual(
      [n.storageDir, n.playlistFilename, n.livePlaylistFilename, n.segmentPrefix],
      [dir, pl, lpl, seg],
      `${prefix} | ${playlist} | ${live}`,
    );
  }
});

test('segment naming: defaults, info names, known-extension stripping, errors', () => {
  const d = segmentNaming('', '', '', room);
  assert.equal(d.playlistFilename, 'testroom-2022-10-04T011306.m3u8');
  assert.equal(d.segmentPrefix, 'testroom-2022-10-04T011306');
  const n = segmentNaming('', 'dir/pl.m3u8', 'dir/live.m3u8', web);
  assert.equal(n.playlistName, 'dir/pl.m3u8');
  assert.equal(n.livePlaylistName, 'dir/live.m3u8');
  // only known extensions are stripped (our choice; the original stripped anything after a dot)
  assert.equal(segmentNaming('', 'my.playlist', '', web).playlistFilename, 'my.playlist.m3u8');
  assert.equal(segmentNaming('', '{time}', '', web).playlistFilename, '2022-10-04T011306.m3u8');
  assert.throws(
    () => segmentNaming('', 'a/playlist', 'b/live', web),
    { message: 'request has missing or invalid field: live_playlist_name must be in same directory as playlist_name' },
  );
  assert.throws(
    () => segmentNaming('', 'playlist', 'playlist.m3u8', web),
    { message: 'request has missing or invalid field: live_playlist_name cannot be identical to playlist_name' },
  );
});

test('segment and image file names', () => {
  assert.equal(segmentFilename('conf_test_2/filename', 'index', 0), 'conf_test_2/filename_00000.ts');
  assert.equal(segmentFilename('p', 'index', 123), 'p_00123.ts');
  assert.equal(segmentFilename('p', 'timestamp', 0, new Date(2023, 4, 3, 22, 55, 4, 814)), 'p_20230503225504814.ts');
  assert.equal(imageFilename('img', 'index', 7), 'img_00007.jpeg');
  assert.equal(imageFilename('img', 'none_overwrite', 7), 'img.jpeg');
  assert.equal(imageFilename('img', 'timestamp', 0, new Date(2023, 4, 3, 22, 55, 4, 8)), 'img_20230503225504008.jpeg');
  assert.deepEqual(imageNaming('', web), { storageDir: '', imagePrefix: 'web-2022-10-04T011306' });
  assert.deepEqual(imageNaming('thumbs/', room), { storageDir: 'thumbs/', imagePrefix: 'testroom-2022-10-04T011306' });
  assert.deepEqual(imageNaming('thumbs/{room_name}', room), { storageDir: 'thumbs/', imagePrefix: 'testroom' });
});
