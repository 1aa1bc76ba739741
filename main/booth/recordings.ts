import { join } from 'node:path';
import { z } from 'zod';
import type { RecordingEntry } from '../contracts/ipc.js';
import { JsonFile } from './json-file.js';

/** The list of past recordings, newest first, kept as `recordings.json` in the config dir. */

const entrySchema = z.object({
  id: z.string(),
  source: z.string(),
  startedAt: z.string(),
  endedAt: z.string(),
  durationS: z.number(),
  sizeBytes: z.number(),
  status: z.string(),
  location: z.string(),
  storedIn: z.string(),
  error: z.string(),
  details: z.string(),
  playable: z.boolean(),
});
const fileSchema = z.object({ version: z.literal(1), recordings: z.array(entrySchema) });

/** At most this many are listed; older entries drop off the list (their files stay). */
const MAX_ENTRIES = 500;

export class RecordingList {
  readonly #file: JsonFile<typeof fileSchema>;
  /** Writes in order: two updates close together must not overtake each other. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(configDir: string) {
    this.#file = new JsonFile(join(configDir, 'recordings.json'), fileSchema, () => ({ version: 1 as const, recordings: [] }));
  }

  async list(): Promise<RecordingEntry[]> {
    await this.#queue;
    return (await this.#file.read()).recordings;
  }

  async get(id: string): Promise<RecordingEntry | undefined> {
    return (await this.list()).find((r) => r.id === id);
  }

  /** Adds the entry on top, or replaces the one with its id. */
  put(entry: RecordingEntry): Promise<RecordingEntry[]> {
    return this.#edit((list) => [entry, ...list.filter((r) => r.id !== entry.id)].slice(0, MAX_ENTRIES));
  }

  remove(id: string): Promise<RecordingEntry[]> {
    return this.#edit((list) => list.filter((r) => r.id !== id));
  }

  #edit(change: (list: RecordingEntry[]) => RecordingEntry[]): Promise<RecordingEntry[]> {
    const next = this.#queue.then(async () => {
      const list = change((await this.#file.read()).recordings);
      await this.#file.write({ version: 1, recordings: list });
      return list;
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
