import { EgressInfo, EgressSourceType, EgressStatus, FileInfo, ImagesInfo, SegmentsInfo } from '@livekit/protocol';
import type { PipelinePlan } from '../contracts/pipeline.js';
import { redactRequest, type StartEgressEnvelope } from '../request/index.js';
import { join } from 'node:path';

/**
 * The EgressInfo an accepted request starts with: STARTING, started_at =
 * updated_at = now, the request echoed with secrets redacted, and result stubs carrying the planned
 * file names.
 */
export function initialEgressInfo(plan: PipelinePlan, envelope: StartEgressEnvelope, now: Date): EgressInfo {
  const ns = BigInt(now.getTime()) * 1_000_000n;
  const info = new EgressInfo({
    egressId: plan.egressId,
    roomId: plan.roomId,
    roomName: plan.roomName,
    sourceType: plan.sourceKind === 'web' ? EgressSourceType.WEB : EgressSourceType.SDK,
    status: EgressStatus.EGRESS_STARTING,
    startedAt: ns,
    updatedAt: ns,
    retryCount: plan.retryCount,
    request: redactRequest(envelope.request),
  });
  if (plan.file) {
    const file = new FileInfo({ filename: join(plan.file.storage.prefix, plan.file.storageFilepath) });
    info.fileResults.push(file);
  }
  if (plan.segments) {
    const s = plan.segments;
    info.segmentResults.push(
      new SegmentsInfo({
        playlistName: join(s.storage.prefix, s.playlistName),
        livePlaylistName: s.livePlaylistName ? join(s.storage.prefix, s.livePlaylistName) : '',
      }),
    );
  }
  for (const img of plan.images ?? []) info.imageResults.push(new ImagesInfo({ filenamePrefix: join(img.storage.prefix, img.filenamePrefix) }));
  // The deprecated single `result` is filled when exactly one output kind exists.
  const kinds = [info.fileResults.length > 0, info.segmentResults.length > 0, (plan.stream?.urls.length ?? 0) > 0].filter(Boolean).length;
  if (kinds === 1) {
    const [file] = info.fileResults;
    const [seg] = info.segmentResults;
    if (file) info.result = { case: 'file', value: file };
    else if (seg) info.result = { case: 'segments', value: seg };
  }
  return info;
}
