import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the booth keeps its state between runs (console token, settings, list of recordings):
 * `$EGRESS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/egress`, else `~/.config/egress`. A flag
 * (`egress console --config-dir`) overrides all three.
 */
export function boothConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['EGRESS_CONFIG_DIR']) return env['EGRESS_CONFIG_DIR'];
  if (env['XDG_CONFIG_HOME']) return join(env['XDG_CONFIG_HOME'], 'egress');
  return join(homedir(), '.config', 'egress');
}

/** Where local recordings go when the form names no folder: `$EGRESS_RECORDINGS_DIR`, else `~/Videos/egress`. */
export function defaultRecordingsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['EGRESS_RECORDINGS_DIR']) return env['EGRESS_RECORDINGS_DIR'];
  return join(homedir(), 'Videos', 'egress');
}
