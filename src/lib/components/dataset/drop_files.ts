// Turns what the browser hands us (a drop, a file input, a folder input) into ImportFiles
// with paths relative to what the user picked, so a JSONL line's "images/a.png" can be
// matched against a file dropped as part of a folder.
import type { ImportFile } from '../../dataset/import';

/** Files from an <input type=file>, with or without webkitdirectory. */
export function filesFromInput(list: FileList | null): ImportFile[] {
  if (!list) return [];
  return [...list].map((f) => ({ path: f.webkitRelativePath || f.name, blob: f }));
}

/** Files from a drop; folders are walked recursively through the entries API. */
export async function filesFromDrop(dt: DataTransfer): Promise<ImportFile[]> {
  // Entries must be taken synchronously: the DataTransfer is emptied after the event returns.
  const entries = [...dt.items]
    .filter((it) => it.kind === 'file')
    .map((it) => it.webkitGetAsEntry())
    .filter((e): e is FileSystemEntry => e !== null);
  if (entries.length === 0) return filesFromInput(dt.files);
  const out: ImportFile[] = [];
  for (const e of entries) await walk(e, out);
  return out;
}

async function walk(entry: FileSystemEntry, out: ImportFile[]): Promise<void> {
  const path = entry.fullPath.replace(/^\//, '');
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path, blob: file });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries returns at most ~100 entries per call; read until it returns none.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, out);
  }
}
