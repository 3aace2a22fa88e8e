// File-level helpers for import: path arithmetic, recognising what a file is (by extension,
// then by its first bytes), and unpacking zips (fflate) into plain ImportFiles.

import { unzipSync } from 'fflate';
import type { ImportFile, ImportIssue } from './types';

export type FileKind = 'image' | 'json' | 'jsonl' | 'csv' | 'dataset_info' | 'zip' | 'other';

const IMAGE_EXT: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  bmp: 'image/bmp',
  avif: 'image/avif',
};

/** Normalises a relative path: forward slashes, no "." segments, ".." resolved, no leading "/" or "./". */
export function normPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return out.join('/');
}

export function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, p: string): string {
  return normPath(dir ? `${dir}/${p}` : p);
}

export function extension(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i + 1).toLowerCase();
}

/** Files a user never meant to import: macOS zip debris and dotfiles (.DS_Store, ._x). Ignored silently. */
export function isJunk(p: string): boolean {
  return normPath(p).split('/').some((seg) => seg === '__MACOSX' || seg.startsWith('.'));
}

/** MIME type from an image's magic bytes, or '' when unknown. */
export function sniffImageType(head: Uint8Array): string {
  const at = (i: number, ...bs: number[]) => bs.every((b, k) => head[i + k] === b);
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  if (at(0, 0x42, 0x4d)) return 'image/bmp';
  if (at(4, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66)) return 'image/avif';
  return '';
}

export function imageTypeFromName(p: string): string {
  return IMAGE_EXT[extension(p)] ?? '';
}

async function head(blob: Blob, n = 16): Promise<Uint8Array> {
  return new Uint8Array(await blob.slice(0, n).arrayBuffer());
}

/** What a file is: by extension first, then by content for unknown extensions. */
export async function classify(f: ImportFile): Promise<FileKind> {
  const name = basename(f.path).toLowerCase();
  const ext = extension(f.path);
  if (name === 'dataset_info.json') return 'dataset_info';
  if (ext in IMAGE_EXT) return 'image';
  if (ext === 'json') return 'json';
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl';
  if (ext === 'csv' || ext === 'tsv') return 'csv';
  if (ext === 'zip') return 'zip';
  const h = await head(f.blob);
  if (sniffImageType(h)) return 'image';
  if (h[0] === 0x50 && h[1] === 0x4b && h[2] === 0x03 && h[3] === 0x04) return 'zip';
  const first = new TextDecoder().decode(h).replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '[') return 'json';
  if (first === '{') return 'jsonl'; // The JSON reader also accepts one object per file.
  return 'other';
}

/**
 * Replaces every zip (nested ones too) by its entries, named `<zip path>/<entry>` so two zips
 * with the same inner layout stay apart and every message names the zip. A zip that cannot be
 * read becomes an issue; the other files still import.
 */
export async function expandZips(files: ImportFile[], issues: ImportIssue[], depth = 0): Promise<ImportFile[]> {
  const out: ImportFile[] = [];
  for (const f of files) {
    if (isJunk(f.path)) continue;
    if ((await classify(f)) !== 'zip') {
      out.push(f);
      continue;
    }
    if (depth >= 4) {
      issues.push({ file: f.path, reason: 'zip nested more than 4 levels deep; skipped' });
      continue;
    }
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(new Uint8Array(await f.blob.arrayBuffer()));
    } catch (e) {
      issues.push({ file: f.path, reason: `not a readable zip archive (${(e as Error).message}); skipped` });
      continue;
    }
    const inner: ImportFile[] = [];
    for (const [name, bytes] of Object.entries(entries)) {
      if (name.endsWith('/')) continue; // A folder entry.
      inner.push({ path: `${normPath(f.path)}/${normPath(name)}`, blob: new Blob([bytes as Uint8Array<ArrayBuffer>]) });
    }
    out.push(...(await expandZips(inner, issues, depth + 1)));
  }
  return out;
}
