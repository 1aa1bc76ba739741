/**
 * Just enough H.264 Annex B reading to check an access unit a page sent (an untrusted encoder) before
 * it reaches h264parse, and to name the profile its SPS really declares.
 */

const NAL_SLICE = 1;
const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;

/** NAL unit types of an Annex B access unit in order; null when it does not start with a start code. */
export function nalTypes(au: Buffer): number[] | null {
  const types: number[] = [];
  let i = 0;
  const n = au.length;
  if (!(n >= 4 && au[0] === 0 && au[1] === 0 && (au[2] === 1 || (au[2] === 0 && au[3] === 1)))) return null;
  while (i + 3 <= n) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      const h = au[i + 3];
      if (h === undefined) break;
      // forbidden_zero_bit set: not H.264.
      if (h & 0x80) return null;
      types.push(h & 0x1f);
      i += 4;
    } else i++;
  }
  return types;
}

/**
 * Why an access unit is unusable (null when it is fine): Annex B framing, at least one slice, and a
 * keyframe that decodes on its own (SPS, PPS, IDR slice) — every keyframe starts a fragment or a
 * resumed recording, so it must carry its parameter sets.
 */
export function checkH264AccessUnit(au: Buffer, key: boolean): string | null {
  const types = nalTypes(au);
  if (!types || types.length === 0) return 'encoded video is not H.264 Annex B';
  if (key) {
    if (!types.includes(NAL_SPS) || !types.includes(NAL_PPS) || !types.includes(NAL_IDR)) return 'keyframe without SPS, PPS and IDR slice';
  } else if (!types.includes(NAL_SLICE) && !types.includes(NAL_IDR)) return 'encoded video frame without a slice';
  return null;
}

export interface SpsProfile {
  readonly profileIdc: number;
  /** constraint_set0..5 flags byte. */
  readonly constraints: number;
  readonly levelIdc: number;
  /** As ffprobe names it, e.g. `Constrained Baseline`, `Main`, `High`. */
  readonly name: string;
}

/** The profile and level the first SPS of an access unit declares (null without an SPS). */
export function spsProfile(au: Buffer): SpsProfile | null {
  for (let i = 0; i + 6 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && ((au[i + 3] as number) & 0x1f) === NAL_SPS) {
      const profileIdc = au[i + 4] as number;
      const constraints = au[i + 5] as number;
      const levelIdc = au[i + 6] as number;
      const name =
        profileIdc === 66 ? ((constraints & 0x40) !== 0 ? 'Constrained Baseline' : 'Baseline') : profileIdc === 77 ? 'Main' : profileIdc === 100 ? 'High' : `profile_idc ${profileIdc}`;
      return { profileIdc, constraints, levelIdc, name };
    }
  }
  return null;
}
