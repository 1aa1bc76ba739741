import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ProviderError, type ObjectResult, type ObjectUpload, type Uploader, type UploaderOptions } from './types.js';

/**
 * Local storage: the file is copied to the storage path, interpreted relative to `/` like the
 * original handler (whose cwd is `/`); `localBaseDir` overrides that base. Location = absolute path.
 */
export class LocalUploader implements Uploader {
  readonly label = 'Local' as const;
  readonly customEndpoint = false;
  private readonly base: string;

  constructor(opts: UploaderOptions = {}) {
    this.base = opts.localBaseDir ?? '/';
  }

  async upload(obj: ObjectUpload): Promise<ObjectResult> {
    const dest = path.resolve(this.base, obj.storagePath);
    try {
      const { size } = await stat(obj.localPath);
      if (path.resolve(obj.localPath) !== dest) {
        await mkdir(path.dirname(dest), { recursive: true });
        await copyFile(obj.localPath, dest);
      }
      obj.onProgress?.(size, size);
      return { location: dest, size };
    } catch (err) {
      const e = err as { message?: unknown } | null;
      throw new ProviderError(typeof e?.message === 'string' ? e.message : String(err));
    }
  }
}
