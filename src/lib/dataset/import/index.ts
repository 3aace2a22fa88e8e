// Import entry point: files (a folder's contents, zips, loose files) -> new samples + issues.
//
// Order of work: unpack zips; sort files into images, data files (JSON, JSONL, CSV) and
// dataset_info.json; read every data file into drafts; find, hash, size-check and decode the
// images the drafts name (a few at a time); build the samples. Images no data file names
// become unlabelled samples: one user turn "<image>" and no assistant turn.
//
// Bad input never aborts: each problem is an ImportIssue naming the file (and line) and the
// reason, and the valid rest is imported. Duplicates:
//  - an image-only file whose bytes are already stored (existingHashes), or already used
//    earlier in this import, is skipped;
//  - an annotated record is skipped only when an earlier record (or existingSamples) has the
//    same images AND the same turns. Several questions about one image are normal in VQA
//    data, so a shared image alone does not make a duplicate; its bytes are stored once.

import {
  DATASET_SCHEMA_VERSION,
  DATA_KINDS,
  SPLITS,
  countPlaceholders,
  type DataKind,
  type ImageRef,
  type Sample,
  type Split,
} from '../schema';
import type { NewSample } from '../db';
import { sha256Hex } from '../hash';
import { makeIdFactory } from '../ids';
import { csvToDrafts } from './csv';
import { jsonToDrafts, type DatasetFormat } from './conversation';
import { parseDatasetInfo, type DatasetEntry } from './dataset_info';
import type { Draft } from './draft';
import { basename, classify, dirname, expandZips, joinPath, normPath, type FileKind } from './files';
import {
  DEFAULT_IMAGE_LIMITS,
  type ImageLimits,
  type ImportFile,
  type ImportIssue,
  type ImportOptions,
  type ImportResult,
} from './types';

export * from './types';
export { browserDecodeImage } from './images';

interface ImageOk {
  hash: string;
  blob: Blob;
  ref: Omit<ImageRef, 'name'>;
}
type ImageResult = ImageOk | { error: string };

const MB = 1024 * 1024;

async function checkImage(f: ImportFile, limits: ImageLimits, decode: ImportOptions['decodeImage']): Promise<ImageResult> {
  const size = f.blob.size;
  if (size > limits.maxBytes) {
    return { error: `image is ${(size / MB).toFixed(1)} MB, over the ${(limits.maxBytes / MB).toFixed(1)} MB limit` };
  }
  let dec;
  try {
    dec = await decode(f.blob, f.path);
  } catch (e) {
    return { error: `image could not be decoded: ${(e as Error).message}` };
  }
  if (Math.max(dec.width, dec.height) > limits.maxSide) {
    return { error: `image is ${dec.width}x${dec.height} px, over the ${limits.maxSide} px limit per side` };
  }
  const hash = await sha256Hex(f.blob);
  // Zip entries carry no MIME type; stored blobs should, so that they display and export right.
  const blob = f.blob.type === dec.type ? f.blob : new Blob([f.blob], { type: dec.type });
  return { hash, blob, ref: { hash, type: dec.type, width: dec.width, height: dec.height, size } };
}

/** Runs `fn` over `xs` with at most `n` in flight; results in input order. */
async function pool<T, R>(xs: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const worker = async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, xs.length) }, worker));
  return out;
}

/** Finds the image file a record names. Tries the data file's folder and each folder above it, then a unique match on the trailing path segments. */
export class ImageResolver {
  private byPath = new Map<string, ImportFile>();
  private byBase = new Map<string, string[]>();

  constructor(images: ImportFile[]) {
    for (const f of images) {
      const p = normPath(f.path);
      this.byPath.set(p, f);
      const b = basename(p).toLowerCase();
      if (!this.byBase.has(b)) this.byBase.set(b, []);
      this.byBase.get(b)!.push(p);
    }
  }

  resolve(ref: string, fromFile: string): string | undefined {
    const clean = ref.replace(/^file:\/\//, '').replace(/\\/g, '/');
    const rel = normPath(clean);
    if (!/^([a-zA-Z]:)?\//.test(clean)) {
      for (let dir = dirname(normPath(fromFile)); ; dir = dirname(dir)) {
        const p = joinPath(dir, rel);
        if (this.byPath.has(p)) return p;
        if (dir === '') break;
      }
    }
    // Absolute or otherwise unmatched: the candidate sharing the most trailing segments, if unique.
    const want = rel.split('/');
    let best: string | undefined;
    let bestN = 0;
    let tie = false;
    for (const p of this.byBase.get(basename(rel).toLowerCase()) ?? []) {
      const have = p.split('/');
      let n = 0;
      while (n < want.length && n < have.length && want[want.length - 1 - n] === have[have.length - 1 - n]) n++;
      if (n > bestN) [best, bestN, tie] = [p, n, false];
      else if (n === bestN && n > 0) tie = true;
    }
    return bestN > 0 && !tie ? best : undefined;
  }

  file(p: string): ImportFile {
    return this.byPath.get(p)!;
  }

  paths(): string[] {
    return [...this.byPath.keys()];
  }
}

function turnsKey(hashes: string[], turns: readonly { role: string; text: string }[]): string {
  return hashes.join(',') + '\n' + JSON.stringify(turns.map((t) => [t.role, t.text]));
}

interface Meta {
  split: Split;
  kind: DataKind;
  stage: number;
  tags: string[];
  id?: string;
}

/** Our extra fields, checked. A bad value falls back to the default with an issue; the sample is kept. */
function readMeta(d: Draft, defaultSplit: Split, issues: ImportIssue[]): Meta {
  const warn = (reason: string) => issues.push({ file: d.file, line: d.line, reason: d.line ? reason : `${d.where}: ${reason}` });
  const m: Meta = { split: defaultSplit, kind: 'business', stage: 1, tags: [] };
  const { split, kind, stage, tags, id } = d.meta;
  if (split !== undefined && split !== '') {
    if (SPLITS.includes(split as Split)) m.split = split as Split;
    else warn(`split ${JSON.stringify(split)} is not one of ${SPLITS.join(', ')}; used "${defaultSplit}"`);
  }
  if (kind !== undefined && kind !== '') {
    if (DATA_KINDS.includes(kind as DataKind)) m.kind = kind as DataKind;
    else warn(`kind ${JSON.stringify(kind)} is not one of ${DATA_KINDS.join(', ')}; used "business"`);
  }
  if (stage !== undefined && stage !== '') {
    const n = typeof stage === 'string' ? Number(stage.trim()) : stage;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1) m.stage = n;
    else warn(`stage ${JSON.stringify(stage)} is not a whole number >= 1; used 1`);
  }
  if (Array.isArray(tags)) m.tags = tags.filter((t): t is string => typeof t === 'string' && t.trim() !== '').map((t) => t.trim());
  else if (typeof tags === 'string') m.tags = tags.split(/[;,|]/).map((t) => t.trim()).filter((t) => t !== '');
  if (typeof id === 'string' && id.trim() !== '') m.id = id.trim();
  else if (typeof id === 'number') m.id = String(id);
  return m;
}

export async function importFiles(files: ImportFile[], opts: ImportOptions): Promise<ImportResult> {
  const issues: ImportIssue[] = [];
  let skipped = 0;
  const limits: ImageLimits = { ...DEFAULT_IMAGE_LIMITS, ...opts.limits };
  const now = opts.now ?? Date.now;
  const t0 = now();
  const newId = opts.newId ?? makeIdFactory(t0);
  const defaultSplit = opts.defaultSplit ?? 'train';

  // 1. Unpack zips and sort the files by kind.
  const flat = await expandZips(files, issues);
  const byKind = new Map<FileKind, ImportFile[]>();
  for (const f of flat) {
    const k = await classify(f);
    if (!byKind.has(k)) byKind.set(k, []);
    byKind.get(k)!.push({ path: normPath(f.path), blob: f.blob });
  }
  for (const f of byKind.get('other') ?? []) {
    issues.push({ file: f.path, reason: 'not an image or a dataset file (.json, .jsonl, .csv, .zip); skipped' });
    skipped++;
  }
  const images = new ImageResolver(byKind.get('image') ?? []);
  const dataFiles = [...(byKind.get('json') ?? []), ...(byKind.get('jsonl') ?? []), ...(byKind.get('csv') ?? [])];

  // 2. dataset_info.json entries say how to read the files they name.
  const formats = new Map<string, DatasetFormat>();
  for (const f of byKind.get('dataset_info') ?? []) {
    for (const entry of parseDatasetInfo(await f.blob.text(), f.path, issues)) applyEntry(entry, dataFiles, formats, f.path, issues);
  }

  // 3. Data files -> drafts.
  const drafts: Draft[] = [];
  for (const f of dataFiles) {
    const text = await f.blob.text();
    const kind = await classify(f);
    const r =
      kind === 'csv'
        ? csvToDrafts(text, f.path, issues)
        : jsonToDrafts(text, f.path, kind === 'jsonl', formats.get(f.path) ?? {}, issues);
    drafts.push(...r.drafts);
    skipped += r.skipped;
  }

  // 4. Find the images each draft names; check every distinct image once, a few at a time.
  const resolved = drafts.map((d) => d.imagePaths.map((p) => images.resolve(p, d.file)));
  const claimed = new Set<string>();
  for (const rs of resolved) for (const p of rs) if (p) claimed.add(p);
  const loose = images.paths().filter((p) => !claimed.has(p)).sort();
  const toCheck = [...claimed, ...loose];
  const checked = new Map<string, ImageResult>();
  const results = await pool(toCheck, 4, (p) => checkImage(images.file(p), limits, opts.decodeImage));
  toCheck.forEach((p, i) => checked.set(p, results[i]));

  // 5. Build samples.
  const items: NewSample[] = [];
  const usedIds = new Set<string>((opts.existingSamples ?? []).map((s) => s.id));
  const seen = new Map<string, string>(); // turnsKey -> where first seen
  for (const s of opts.existingSamples ?? []) seen.set(turnsKey(s.images.map((i) => i.hash), s.turns), 'an existing sample');
  const existingHashes = new Set(opts.existingHashes ?? []);
  const usedHashes = new Map<string, string>(); // hash -> first file using it in this import

  const build = (meta: Meta, imgs: { ok: ImageOk; name: string }[], d: Pick<Draft, 'turns' | 'source'>): NewSample => {
    let id = meta.id;
    if (id === undefined || usedIds.has(id)) id = newId();
    usedIds.add(id);
    const sample: Sample = {
      v: DATASET_SCHEMA_VERSION,
      id,
      projectId: opts.projectId,
      images: imgs.map(({ ok, name }) => ({ ...ok.ref, name })),
      turns: d.turns,
      split: meta.split,
      kind: meta.kind,
      stage: meta.stage,
      tags: meta.tags,
      source: d.source,
      createdAt: t0,
      updatedAt: t0,
    };
    const blobs = new Map<string, Blob>();
    for (const { ok } of imgs) blobs.set(ok.hash, ok.blob);
    return { sample, blobs };
  };

  drafts.forEach((d, di) => {
    const skip = (reason: string) => {
      issues.push({ file: d.file, line: d.line, reason: d.line ? `${reason}; skipped` : `${d.where}: ${reason}; skipped` });
      skipped++;
    };
    const nPh = countPlaceholders(d.turns);
    if (nPh !== d.imagePaths.length) {
      return skip(`has ${nPh} <image> placeholder(s) but ${d.imagePaths.length} image(s); each image needs exactly one <image> in the text`);
    }
    const imgs: { ok: ImageOk; name: string }[] = [];
    for (let k = 0; k < d.imagePaths.length; k++) {
      const p = resolved[di][k];
      if (!p) return skip(`image "${d.imagePaths[k]}" not found among the imported files (looked next to ${d.file} and in the folders above it)`);
      const r = checked.get(p)!;
      if ('error' in r) return skip(`image "${p}": ${r.error}`);
      imgs.push({ ok: r, name: basename(p) });
    }
    const key = turnsKey(imgs.map((x) => x.ok.hash), d.turns);
    const first = seen.get(key);
    if (first) return skip(`duplicate: same images and turns as ${first}`);
    seen.set(key, `${d.file} ${d.where}`);
    const meta = readMeta(d, defaultSplit, issues);
    for (const { ok } of imgs) if (!usedHashes.has(ok.hash)) usedHashes.set(ok.hash, d.source);
    items.push(build(meta, imgs, d));
  });

  for (const p of loose) {
    const r = checked.get(p)!;
    if ('error' in r) {
      issues.push({ file: p, reason: `${r.error}; skipped` });
      skipped++;
      continue;
    }
    if (existingHashes.has(r.hash) || usedHashes.has(r.hash)) {
      const where = existingHashes.has(r.hash) ? 'an image already in the dataset' : usedHashes.get(r.hash);
      issues.push({ file: p, reason: `duplicate: same image content as ${where}; skipped` });
      skipped++;
      continue;
    }
    usedHashes.set(r.hash, p);
    const meta: Meta = { split: defaultSplit, kind: 'business', stage: 1, tags: [] };
    items.push(build(meta, [{ ok: r, name: basename(p) }], { turns: [{ role: 'user', text: '<image>' }], source: p }));
  }

  const newImages = new Set<string>();
  for (const it of items) for (const im of it.sample.images) if (!existingHashes.has(im.hash)) newImages.add(im.hash);
  return { items, issues, counts: { samples: items.length, images: newImages.size, skipped } };
}

/** Assigns a dataset_info entry's format to the data file(s) it names. */
function applyEntry(
  entry: DatasetEntry,
  dataFiles: ImportFile[],
  formats: Map<string, DatasetFormat>,
  infoFile: string,
  issues: ImportIssue[],
): void {
  const hits = dataFiles.filter((f) => f.path === entry.path || f.path.startsWith(entry.path + '/'));
  if (hits.length === 0) {
    issues.push({ file: infoFile, reason: `dataset "${entry.name}": file "${entry.path}" is not among the imported files` });
    return;
  }
  for (const f of hits) formats.set(f.path, entry.format);
}
