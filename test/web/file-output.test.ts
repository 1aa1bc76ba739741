import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AudioCodec, EgressStatus, EncodedFileOutput, EncodedFileType, EncodingOptions, EncodingOptionsPreset, VideoCodec } from '@livekit/protocol';
import { audioStream, countedFps, ffprobe, videoStream } from '../support/media.js';
import { runCli, runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';

/**
 * Web egress to files, end to end: real Chromium renders the bundled pages, real GStreamer encodes,
 * ffprobe checks the result (issue: foundation — file outputs, presets, advanced encoding).
 */

let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp.remove();
});

describe('web egress file outputs', () => {
  it('records 10 s of the demo page through the CLI: MP4 1280x720 30 fps H.264 Main + AAC 44.1 kHz stereo', async () => {
    const { code, last, stderr } = await runCli(['record', '--duration', '10', '--out', `${tmp.path}/cli/`], tmp.path);
    assert.equal(code, 0, stderr.slice(-2000));
    assert.equal(last['status'], 'EGRESS_COMPLETE');
    const file = (last['fileResults'] as { location: string; duration: string; size: string; filename: string }[])[0];
    assert.ok(file && existsSync(file.location), 'file result with an existing location');
    assert.match(file.filename, /web-\d{4}-\d{2}-\d{2}T\d{6}\.mp4$/);
    assert.ok(Number(file.size) > 100_000);
    const reported = Number(file.duration) / 1e9;
    const p = await ffprobe(file.location);
    const v = videoStream(p);
    const a = audioStream(p);
    assert.ok(v && a, 'both streams present');
    assert.equal(v.codec_name, 'h264');
    assert.equal(v.profile, 'Main');
    assert.equal(v.width, 1280);
    assert.equal(v.height, 720);
    const counted = await countedFps(file.location);
    assert.ok(Math.abs(counted.fps - 30) <= 0.6, `average fps ${counted.fps.toFixed(3)} within ±2 % of 30`);
    assert.equal(a.codec_name, 'aac');
    assert.equal(a.sample_rate, '44100');
    assert.equal(a.channels, 2);
    const duration = Number(p.format.duration);
    assert.ok(Math.abs(duration - 10) <= 0.5, `container duration ${duration} within 0.5 s of 10 s`);
    assert.ok(Math.abs(duration - reported) <= 0.5, `container duration ${duration} within 0.5 s of reported ${reported}`);
    const manifestPath = `${tmp.path}/cli/${String(last['egressId'])}.json`;
    assert.ok(existsSync(manifestPath), 'manifest next to the file');
    // The timing corrections behind the file's A/V alignment, for audit: tab-capture video is on the
    // machine's monotonic clock, audio on the page's clock mapped by a measured offset (a web page's
    // audio keeps its heard time: no output latency taken off) and written earlier by the AAC
    // encoder's delay (voaacenc: 1600 samples at the preset's 48 kHz).
    const timing = (JSON.parse(await readFile(manifestPath, 'utf8')) as { timing?: Record<string, unknown> }).timing;
    assert.ok(timing, 'manifest has the timing corrections');
    assert.equal(timing['video_clock'], 'monotonic');
    assert.equal(timing['audio_clock'], 'page');
    const uncertainty = Number(timing['page_clock_uncertainty_us']);
    assert.ok(uncertainty > 0 && uncertainty < 50_000, `page clock offset known to ±${uncertainty} µs (0 < x < 50 ms)`);
    assert.ok(Number.isInteger(timing['page_clock_offset_us']), 'page clock offset in µs');
    assert.equal(timing['audio_latency_us'], 0);
    assert.equal(timing['audio_encoder_delay_us'], Math.round((1600 * 1e6) / Number(a?.sample_rate)));
  });

  it('audio_only → OGG/Opus 48 kHz stereo with no video stream', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}demo/`, audioOnly: true }, stopAfterMs: 5000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const loc = info.fileResults[0]?.location ?? '';
      assert.match(loc, /\.ogg$/);
      const p = await ffprobe(loc);
      assert.equal(videoStream(p), undefined);
      const a = audioStream(p);
      assert.equal(a?.codec_name, 'opus');
      assert.equal(a?.sample_rate, '48000');
      assert.equal(a?.channels, 2);
      assert.ok(Math.abs(Number(p.format.duration) - 5) <= 0.5, `duration ${p.format.duration}`);
    });
  });

  it('v2 StartEgressRequest with a web source, audio_only → OGG/Opus', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}demo/`, audioOnly: true }, v2: true, stopAfterMs: 4000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      assert.equal(info.request.case, 'egress', 'the v2 request is echoed');
      const a = audioStream(await ffprobe(info.fileResults[0]?.location ?? ''));
      assert.equal(a?.codec_name, 'opus');
    });
  });

  it('video_only → MP4 with no audio stream', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({ request: { url: `${base}demo/`, videoOnly: true }, stopAfterMs: 5000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const p = await ffprobe(info.fileResults[0]?.location ?? '');
      assert.equal(audioStream(p), undefined);
      assert.equal(videoStream(p)?.codec_name, 'h264');
    });
  });

  it('audio_only with an .mp3 path → MP3 CBR 128 kbps', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({
        request: { url: `${base}demo/`, audioOnly: true, fileOutputs: [new EncodedFileOutput({ fileType: EncodedFileType.MP3, filepath: `${tmp.path}/mp3/x.mp3` })] },
        stopAfterMs: 5000,
        tmpDir: tmp.path,
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const p = await ffprobe(info.fileResults[0]?.location ?? '');
      const a = audioStream(p);
      assert.equal(a?.codec_name, 'mp3');
      assert.equal(a?.channels, 2);
      assert.ok(Math.abs(Number(a?.bit_rate) - 128_000) <= 5000, `bitrate ${a?.bit_rate}`);
    });
  });

  it('preset H264_1080P_30 → 1920x1080', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const { info } = await runWebEgress({
        request: { url: `${base}demo/`, options: { case: 'preset', value: EncodingOptionsPreset.H264_1080P_30 } },
        stopAfterMs: 5000,
        tmpDir: tmp.path,
      });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const v = videoStream(await ffprobe(info.fileResults[0]?.location ?? ''));
      assert.equal(v?.width, 1920);
      assert.equal(v?.height, 1080);
    });
  });

  it('advanced options: size, frame rate, bitrates, High profile and 48 kHz AAC are honoured', async () => {
    await withServer(TEMPLATES_DIR, async (base) => {
      const advanced = new EncodingOptions({
        width: 960,
        height: 540,
        framerate: 25,
        videoBitrate: 1200,
        videoCodec: VideoCodec.H264_HIGH,
        audioCodec: AudioCodec.AAC,
        audioBitrate: 96,
        audioFrequency: 48000,
      });
      const { info } = await runWebEgress({ request: { url: `${base}demo/`, options: { case: 'advanced', value: advanced } }, stopAfterMs: 10_000, tmpDir: tmp.path });
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const loc = info.fileResults[0]?.location ?? '';
      const p = await ffprobe(loc);
      const v = videoStream(p);
      assert.equal(v?.width, 960);
      assert.equal(v?.height, 540);
      assert.equal(v?.profile, 'High');
      const counted = await countedFps(loc);
      assert.ok(Math.abs(counted.fps - 25) <= 0.5, `fps ${counted.fps}`);
      assert.ok(Number(v?.bit_rate) > 0 && Number(v?.bit_rate) <= 1200 * 1050, `video bitrate ${v?.bit_rate} within +5 % of 1200 kbps`);
      const a = audioStream(p);
      assert.equal(a?.sample_rate, '48000');
      assert.ok(Math.abs(Number(a?.bit_rate) - 96_000) <= 10_000, `audio bitrate ${a?.bit_rate}`);
    });
  });
});
