import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { logger } from '../log.js';

const log = logger('booth');

/**
 * A small JSON document in the config dir, validated on read (a damaged or foreign file gives the
 * fallback, and is kept aside as `<name>.bad` rather than overwritten unseen) and written atomically
 * (temp file + rename), so a crash never leaves half a file.
 */
export class JsonFile<S extends z.ZodTypeAny> {
  constructor(
    readonly path: string,
    private readonly schema: S,
    private readonly fallback: () => z.infer<S>,
  ) {}

  async read(): Promise<z.infer<S>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return this.fallback();
    }
    try {
      const parsed = this.schema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data as z.infer<S>;
      log.warn(`${this.path} is not valid (${parsed.error.issues[0]?.message ?? 'schema'}): kept as ${this.path}.bad, starting afresh`);
    } catch {
      log.warn(`${this.path} is not JSON: kept as ${this.path}.bad, starting afresh`);
    }
    await rename(this.path, `${this.path}.bad`).catch(() => undefined);
    return this.fallback();
  }

  async write(value: z.infer<S>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.path);
  }
}
