/**
 * The manifest `<egress_id>.json` written next to each output (reference §4.4): omit-empty fields,
 * times in ns, files with their final locations.
 */

export interface ManifestInput {
  readonly egressId: string;
  readonly roomId: string;
  readonly roomName: string;
  readonly url: string;
  readonly startedAtNs: bigint;
  readonly endedAtNs: bigint;
  readonly files: readonly { readonly filename: string; readonly location: string }[];
}

export function buildManifest(m: ManifestInput): string {
  const out: Record<string, unknown> = { egress_id: m.egressId };
  if (m.roomId) out['room_id'] = m.roomId;
  if (m.roomName) out['room_name'] = m.roomName;
  if (m.url) out['url'] = m.url;
  if (m.startedAtNs > 0n) out['started_at'] = Number(m.startedAtNs);
  if (m.endedAtNs > 0n) out['ended_at'] = Number(m.endedAtNs);
  if (m.files.length > 0) out['files'] = m.files.map((f) => ({ filename: f.filename, location: f.location }));
  return JSON.stringify(out, null, 2);
}
