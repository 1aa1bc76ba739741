import path from 'node:path';
import type { OutputType } from './types.js';

const TYPES: Record<OutputType, string> = {
  mp4: 'video/mp4',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
  webm: 'video/webm',
  ts: 'video/mp2t',
  m3u8: 'application/x-mpegurl',
  jpeg: 'image/jpeg',
  json: 'application/json',
  txt: 'text/plain',
  dot: 'text/vnd.graphviz',
  other: 'application/octet-stream',
};

export function contentTypeOf(type: OutputType): string {
  return TYPES[type];
}

/** Output type from a file name's extension. */
export function outputTypeOfPath(p: string): OutputType {
  const ext = path.extname(p).toLowerCase().replace('.', '');
  switch (ext) {
    case 'mp4':
    case 'ogg':
    case 'mp3':
    case 'webm':
    case 'ts':
    case 'm3u8':
    case 'json':
    case 'txt':
    case 'dot':
      return ext;
    case 'jpg':
    case 'jpeg':
      return 'jpeg';
    default:
      return 'other';
  }
}
