/**
 * RTMP failure cases of the original against real servers on loopback:
 * a server that stops reading (a proxy that blackholes the connection) fails that URL by the
 * byte-progress liveness check while the file and the other URL go on; a server that rejects the
 * re-publish after a dropped connection fails the URL after the reconnect window, with retries
 * counted; removing the last URL of a stream-only egress ends it as `All streams stopped`; with
 * segments next to it (EmptyStreamBin) the egress goes on without any stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EgressStatus, EncodingOptions, SegmentedFileOutput, StreamInfo_Status, StreamOutput, StreamProtocol, type EgressInfo, type StreamInfo } from '@livekit/protocol';
import { freePort } from '../harness/storage.js';
import { rtmpServerAvailable, startRtmpServer, type RtmpServer } from '../harness/rtmp.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { ffprobe } from '../support/media.js';
import { checkHls } from '../support/hls.js';
import { runWebEgress, tempDir, TEMPLATES_DIR, withServer } from '../support/web-egress.js';
import type { WebEgressController } from '../../main/egress/web-egress.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function byUrl(info: EgressInfo, url: string): StreamInfo {
  const s = info.streamResults.find((x) => x.url === url);
  assert.ok(s, `${url} in ${info.streamResults.map((x) => x.url).join(', ')}`);
  return s;
}

/** onActive runs on every ACTIVE update: run a flow once. */
function once<T>(fn: (c: T) => void): (c: T) => void {
  let done = false;
  return (c) => {
    if (done) return;
    done = true;
    fn(c);
  };
}

const SMALL = new EncodingOptions({ width: 640, height: 360, framerate: 25, videoBitrate: 1500, keyFrameInterval: 2 });
/** The wedge case at the default stream bitrate: the socket buffers that absorb the stream after the server stopped reading fill in seconds, not tens of seconds. */
const WEDGE = new EncodingOptions({ width: 960, height: 540, framerate: 25, videoBitrate: 3000, keyFrameInterval: 2 });

let tmp: { path: string; remove: () => Promise<void> };
let rtmp: RtmpServer;
before(async () => {
  tmp = await tempDir();
  if (rtmpServerAvailable()) rtmp = await startRtmpServer();
});
after(async () => {
  await rtmp?.stop();
  await tmp?.remove();
});

describe('RTMP failures', { skip: rtmpServerAvailable() ? false : 'nginx + libnginx-mod-rtmp not installed (scripts/setup.sh)' }, () => {
  // The liveness check fails a URL 30 s after its last progress (dated from the pace it moved at,
  // with a probe due when the window ends). A server's kernel goes on taking data into its receive
  // buffer after the application stopped reading — here the proxy's, from a fraction of a second to
  // ~17 s at this bitrate, depending on how far the kernel grew the buffer — and no sender can tell
  // that apart from reading, so the 30 s count from the last byte the server's kernel took (measured
  // here from the proxy's receive queue). Bound: 30 s + 1 s (the `ss` probe and this test's 100 ms
  // polling run late on a loaded machine); both figures are printed.
  it('a server that stops reading: that URL FAILED 30 s (+ 1 s) after the server took its last byte, by the liveness check, also across the publisher\'s reconnections; the file and a URL behind a thin link go on', async () => {
    const proxy = await startTcpProxy(rtmp.port);
    // The other URL is healthy behind a thin link: 450 kB/s for a ~390 kB/s stream, so the stream's
    // bursts back up in its socket buffers all along; it must not be taken for a wedge. (A link
    // slower than the stream cannot carry it: the backlog grows until rtmp2sink's 5 s write
    // timeout drops the connection — a reconnect, as in the original, not a liveness failure.)
    const SLOW_LINK = 450_000;
    const healthy = await startTcpProxy(rtmp.port, '127.0.0.1', { bytesPerSecond: SLOW_LINK });
    const wedged = `rtmp://127.0.0.1:${proxy.port}/live/wedgedkey1`;
    const good = `rtmp://127.0.0.1:${healthy.port}/live/healthykey1`;
    let afterFailure = 0;
    let controller: WebEgressController | null = null;
    let activeAt = 0;
    let stoppedAt = 0;
    let failedAfterS = 0;
    let failedAfterLastByteS = 0;
    const flow = (async () => {
      await until('ACTIVE', () => controller !== null);
      activeAt = Date.now();
      const c = controller as unknown as WebEgressController;
      await until('media through the proxy', () => proxy.bytesForwarded > 200_000, 30_000);
      await sleep(4000);
      proxy.blackhole();
      const t0 = Date.now();
      // When the kernel took its last byte on the connections blackholed now (later ones only get a
      // handshake): the last growth of their receive queues.
      const wedgedPorts = [...(await proxy.receiveQueues()).keys()];
      let lastTaken = { at: t0, bytes: 0 };
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const q = await proxy.receiveQueues();
          const bytes = wedgedPorts.reduce((n, p) => n + (q.get(p) ?? 0), 0);
          if (bytes > lastTaken.bytes) lastTaken = { at: Date.now(), bytes };
          await sleep(100);
        }
      })();
      try {
        await until('the wedged URL FAILED', () => byUrl(c.info, `rtmp://127.0.0.1:${proxy.port}/live/{wed...ey1}`).status === StreamInfo_Status.FAILED, 90_000);
      } finally {
        watching = false;
        await watcher;
      }
      failedAfterS = (Date.now() - t0) / 1000;
      failedAfterLastByteS = (Date.now() - lastTaken.at) / 1000;
      assert.equal(c.info.status, EgressStatus.EGRESS_ACTIVE, 'the egress goes on');
      assert.equal(byUrl(c.info, `rtmp://127.0.0.1:${healthy.port}/live/{hea...ey1}`).status, StreamInfo_Status.ACTIVE, 'the other URL goes on');
      const b0 = healthy.bytesForwarded;
      await sleep(4000);
      afterFailure = healthy.bytesForwarded - b0;
      stoppedAt = Date.now();
      c.stop();
    })();
    try {
      const result = await withServer(TEMPLATES_DIR, (base) =>
        runWebEgress({
          request: { url: base + 'demo/', options: { case: 'advanced', value: WEDGE }, streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [wedged, good] })] },
          tmpDir: join(tmp.path, 'wedge'),
          timeoutMs: 150_000,
          onActive: (c) => (controller ??= c),
        }),
      );
      await flow;
      const { info } = result;
      assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
      const w = byUrl(info, `rtmp://127.0.0.1:${proxy.port}/live/{wed...ey1}`);
      assert.equal(w.status, StreamInfo_Status.FAILED);
      assert.notEqual(w.error, '');
      assert.ok(failedAfterLastByteS <= 31, `FAILED ${failedAfterLastByteS} s after the server took its last byte`);
      assert.ok(failedAfterS >= 29, `FAILED ${failedAfterS} s after the server stopped reading: not before the 30 s window`);
      assert.equal(w.error, 'no outbound progress for 30s');
      const g = byUrl(info, `rtmp://127.0.0.1:${healthy.port}/live/{hea...ey1}`);
      assert.equal(g.status, StreamInfo_Status.FINISHED);
      assert.equal(g.error, '');
      assert.equal(g.retries, 0, 'the thin link never dropped');
      const file = info.fileResults[0];
      assert.ok(file);
      const fileDur = Number((await ffprobe(file.location)).format.duration);
      assert.ok(fileDur >= (stoppedAt - activeAt) / 1000 - 0.5, `file ${fileDur} s, ACTIVE → stop ${(stoppedAt - activeAt) / 1000} s`);
      const rec = join(rtmp.recordDir, 'healthykey1.flv');
      await until('healthykey1.flv', () => existsSync(rec), 10_000);
      const recDur = Number((await ffprobe(rec)).format.duration);
      assert.ok(afterFailure > 100_000, `${afterFailure} bytes reached the server on the other URL in the 4 s after the failure`);
      const slowRate = healthy.bytesForwarded / ((stoppedAt - activeAt) / 1000);
      // (under load a publisher starts late and its tail may be cut at the stop: not the whole wall clock)
      assert.ok(recDur >= failedAfterS, `the other URL received ${recDur} s`);
      console.log(`# wedge: FAILED ${failedAfterLastByteS.toFixed(1)} s after the server took its last byte, ${failedAfterS.toFixed(1)} s after it stopped reading (${w.error}, ${w.retries} retries); file ${fileDur.toFixed(2)} s; thin link ${Math.round(slowRate / 1000)} kB/s, ${recDur.toFixed(2)} s received`);
    } finally {
      await proxy.close();
      await healthy.close();
    }
  });

  it('a server that rejects the re-publish after a dropped connection: retried, then FAILED after the reconnect window (only output → egress FAILED)', async () => {
    let publishes = 0;
    let rejects = 0;
    const hook: Server = createServer((req, res) => {
      req.resume();
      publishes++;
      if (publishes === 1) return res.writeHead(200).end();
      rejects++;
      res.writeHead(403).end();
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    const hookPort = (hook.address() as { port: number }).port;
    const server = await startRtmpServer({ onPublish: `http://127.0.0.1:${hookPort}/publish` });
    const proxy: TcpProxy = await startTcpProxy(server.port);
    let cutAt = 0;
    try {
      const url = `rtmp://127.0.0.1:${proxy.port}/live/rejectedkey`;
      const { info, updates } = await withServer(TEMPLATES_DIR, (base) =>
        runWebEgress({
          request: { url: base + 'demo/', options: { case: 'advanced', value: SMALL }, streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [url] })] },
          noDefaultFile: true,
          tmpDir: join(tmp.path, 'reject'),
          timeoutMs: 150_000,
          onActive: once(() => {
            void (async () => {
              await until('media through the proxy', () => proxy.bytesForwarded > 100_000, 30_000);
              await sleep(8000);
              cutAt = Date.now();
              proxy.cut();
            })();
          }),
        }),
      );
      const endedAfterS = (Date.now() - cutAt) / 1000;
      assert.equal(info.status, EgressStatus.EGRESS_FAILED);
      assert.notEqual(info.error, '');
      const s = info.streamResults[0];
      assert.ok(s);
      assert.equal(s.status, StreamInfo_Status.FAILED);
      assert.notEqual(s.error, '');
      assert.equal(s.url, `rtmp://127.0.0.1:${proxy.port}/live/{rej...key}`);
      assert.ok(s.retries >= 1, `${s.retries} retries`);
      assert.ok(s.lastRetryAt >= BigInt(cutAt) * 1_000_000n, 'last_retry_at after the drop');
      assert.ok(publishes >= 2 && rejects >= 1, `${publishes} publishes, ${rejects} rejected`);
      // retried for the reconnect window (30 s from the last progress seen, polled every 5 s), not failed at the first refusal
      assert.ok(endedAfterS >= 24, `FAILED ${endedAfterS} s after the drop`);
      assert.ok(updates.some((u) => (u.streamResults[0]?.retries ?? 0) >= 1 && u.streamResults[0]?.status === StreamInfo_Status.ACTIVE), 'an update carried the retry');
      console.log(`# publish reject: ${s.retries} retries, FAILED ${endedAfterS.toFixed(1)} s after the drop; ${publishes} publishes, ${rejects} rejected`);
    } finally {
      await proxy.close();
      await server.stop();
      hook.close();
    }
  });

  it('EmptyStreamBin: segments + RTMP [good, bad]; remove good → {good FINISHED, bad FAILED}, the egress goes on; stop → playlist complete', async () => {
    const good = `${rtmp.liveUrl}emptybinkey`;
    const badPort = await freePort();
    const bad = `rtmp://127.0.0.1:${badPort}/live/emptybinbad`;
    const dir = join(tmp.path, 'emptybin');
    const { info } = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: {
          url: base + 'demo/',
          options: { case: 'advanced', value: SMALL },
          streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [good, bad] })],
          segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: join(dir, 'seg'), playlistName: 'index.m3u8', segmentDuration: 2 })],
        },
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work-emptybin'),
        timeoutMs: 90_000,
        onActive: once((c: WebEgressController) => {
          void (async () => {
            await until('bad FAILED', () => byUrl(c.info, `rtmp://127.0.0.1:${badPort}/live/{emp...bad}`).status === StreamInfo_Status.FAILED);
            await sleep(4000);
            c.updateStream([], [good]);
            await sleep(4000);
            assert.equal(c.info.status, EgressStatus.EGRESS_ACTIVE, 'segments keep the egress running');
            c.stop();
          })();
        }),
      }),
    );
    assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
    assert.match(info.details, /End reason: StopEgress API/);
    assert.deepEqual(
      info.streamResults.map((s) => s.status),
      [StreamInfo_Status.FINISHED, StreamInfo_Status.FAILED],
    );
    const seg = info.segmentResults[0];
    assert.ok(seg);
    const pl = await checkHls({ playlistPath: join(dir, 'index.m3u8'), segmentDurationS: 2, info: seg });
    assert.ok(pl.segments.length >= 5, `${pl.segments.length} segments`);
  });

  it('removing the last URL of the only output ends the egress: COMPLETE, End reason: All streams stopped', async () => {
    const only = `${rtmp.liveUrl}lastonekey`;
    const { info } = await withServer(TEMPLATES_DIR, (base) =>
      runWebEgress({
        request: { url: base + 'demo/', options: { case: 'advanced', value: SMALL }, streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [only] })] },
        noDefaultFile: true,
        tmpDir: join(tmp.path, 'work-last'),
        timeoutMs: 60_000,
        onActive: once((c: WebEgressController) => {
          void sleep(4000).then(() => c.updateStream([], [only]));
        }),
      }),
    );
    assert.equal(info.status, EgressStatus.EGRESS_COMPLETE, info.error);
    assert.equal(info.error, '');
    assert.equal(info.details, 'End reason: All streams stopped');
    assert.equal(info.streamResults[0]?.status, StreamInfo_Status.FINISHED);
    assert.ok(Number(info.streamResults[0]?.duration ?? 0n) / 1e9 > 3);
  });
});
