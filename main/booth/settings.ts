import { join } from 'node:path';
import { boothSettingsSchema, type BoothSettings } from '../contracts/ipc.js';
import { JsonFile } from './json-file.js';

/** The booth form as last used, kept as `settings.json` in the config dir (no secrets: see ipc.ts). */
export class BoothSettingsStore {
  readonly #file: JsonFile<typeof boothSettingsSchema>;

  constructor(configDir: string) {
    this.#file = new JsonFile(join(configDir, 'settings.json'), boothSettingsSchema, () => boothSettingsSchema.parse({}));
  }

  read(): Promise<BoothSettings> {
    return this.#file.read();
  }

  async write(settings: BoothSettings): Promise<BoothSettings> {
    await this.#file.write(settings);
    return settings;
  }
}
