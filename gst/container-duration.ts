import { fragmentedMp4DurationNs } from './fmp4-duration.js';
import { oggOpusDurationNs } from './ogg-duration.js';

/**
 * The duration of the media a recorded file holds, read from its container without decoding: for
 * files whose muxer did not finish, or whose writer died, what reached the disk is what was recorded.
 * Null where the container is not one read here (fragmented MP4 and Ogg Opus are) or unreadable.
 */
export async function containerDurationNs(fileType: string, path: string): Promise<bigint | null> {
  const read = fileType === 'mp4' ? fragmentedMp4DurationNs : fileType === 'ogg' ? oggOpusDurationNs : null;
  return read ? await read(path).catch(() => null) : null;
}
