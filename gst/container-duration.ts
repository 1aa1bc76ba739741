import { fragmentedMp4DurationNs } from './fmp4-duration.js';
import { oggOpusDurationNs } from './ogg-duration.js';

/**
 * The duration of the media a recorded file holds, read from its container without decoding: for
 * files whose muxer did not finish, or whose writer died, what reached the disk is what was recorded.
 * Null where the container is not one read here (fragmented MP4 and Ogg Opus are) or unreadable.
 */
export async function containerDurationNs(fileType: string, path: string): Promise<bigint | null> {
  const read = readerOf(fileType);
  return read ? await read(path).catch(() => null) : null;
}

/**
 * The duration of a file whose writer did not finish: what `containerDurationNs` reads, and 0 where a
 * container read here holds no media (killed before its header or first fragment was complete: it
 * plays nothing). Null only for containers not read here.
 */
export async function unfinishedDurationNs(fileType: string, path: string): Promise<bigint | null> {
  return (await containerDurationNs(fileType, path)) ?? (readerOf(fileType) ? 0n : null);
}

function readerOf(fileType: string): ((path: string) => Promise<bigint | null>) | null {
  return fileType === 'mp4' ? fragmentedMp4DurationNs : fileType === 'ogg' ? oggOpusDurationNs : null;
}
