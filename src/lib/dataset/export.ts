// Export to the two layouts other tools read, as a zip:
//  - LLaMA-Factory (ShareGPT with `messages`): data.jsonl + images/ + dataset_info.json, so
//    the unpacked folder is a ready `dataset_dir` (`--dataset <name>`).
//  - Hugging Face "messages with content parts" (TRL / datasets): data.jsonl + images/.
// Both carry our own fields (id, split, kind, stage, tags) beside the standard ones; other
// tools ignore them, and importing the zip here restores them (see the round-trip tests).
// Images are stored uncompressed in the zip: they are compressed formats already.

import { zipSync, strToU8, type Zippable } from 'fflate';
import { IMAGE_PLACEHOLDER, type ImageRef, type Sample, type Turn } from './schema';
import { extension } from './import/files';

export interface ExportOptions {
  /** Name of the dataset in dataset_info.json (LLaMA-Factory's `--dataset`). Default 'vlm_workbench'. */
  datasetName?: string;
  /** Called after each image is read. */
  onProgress?: (done: number, total: number) => void;
}

export type GetImage = (hash: string) => Promise<Blob | undefined>;

const EXT_BY_TYPE: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
  'image/avif': 'avif',
};

export function imagePath(im: ImageRef): string {
  return `images/${im.hash}.${EXT_BY_TYPE[im.type] ?? (extension(im.name) || 'bin')}`;
}

function extras(s: Sample) {
  return { id: s.id, split: s.split, kind: s.kind, stage: s.stage, tags: s.tags };
}

/** `<image>What is it?` -> [{type:'image'}, {type:'text', text:'What is it?'}] */
export function textToParts(text: string): ({ type: 'image' } | { type: 'text'; text: string })[] {
  const parts: ({ type: 'image' } | { type: 'text'; text: string })[] = [];
  text.split(IMAGE_PLACEHOLDER).forEach((seg, i) => {
    if (i > 0) parts.push({ type: 'image' });
    if (seg !== '') parts.push({ type: 'text', text: seg });
  });
  return parts;
}

/** Reads every image the samples use once and adds it under images/. Throws naming a missing image. */
async function addImages(zip: Zippable, samples: readonly Sample[], getImage: GetImage, opts: ExportOptions): Promise<void> {
  const refs = new Map<string, { im: ImageRef; sampleId: string }>();
  for (const s of samples) for (const im of s.images) if (!refs.has(im.hash)) refs.set(im.hash, { im, sampleId: s.id });
  let done = 0;
  for (const { im, sampleId } of refs.values()) {
    const blob = await getImage(im.hash);
    if (!blob) throw new Error(`Image "${im.name}" (${im.hash.slice(0, 12)}…) of sample ${sampleId} is missing from storage; nothing was exported.`);
    zip[imagePath(im)] = [new Uint8Array(await blob.arrayBuffer()), { level: 0 }];
    opts.onProgress?.(++done, refs.size);
  }
}

function jsonl(records: unknown[]): Uint8Array {
  return strToU8(records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
}

export async function exportLlamaFactory(samples: readonly Sample[], getImage: GetImage, opts: ExportOptions = {}): Promise<Blob> {
  const name = opts.datasetName ?? 'vlm_workbench';
  const records = samples.map((s) => ({
    messages: s.turns.map((t: Turn) => ({ role: t.role, content: t.text })),
    images: s.images.map(imagePath),
    ...extras(s),
  }));
  const info = {
    [name]: {
      file_name: 'data.jsonl',
      formatting: 'sharegpt',
      columns: { messages: 'messages', images: 'images' },
      tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' },
    },
  };
  const zip: Zippable = {
    'data.jsonl': jsonl(records),
    'dataset_info.json': strToU8(JSON.stringify(info, null, 2) + '\n'),
  };
  await addImages(zip, samples, getImage, opts);
  return new Blob([zipSync(zip)], { type: 'application/zip' });
}

export async function exportHfMessages(samples: readonly Sample[], getImage: GetImage, opts: ExportOptions = {}): Promise<Blob> {
  const records = samples.map((s) => ({
    messages: s.turns.map((t) => ({ role: t.role, content: textToParts(t.text) })),
    images: s.images.map(imagePath),
    ...extras(s),
  }));
  const zip: Zippable = { 'data.jsonl': jsonl(records) };
  await addImages(zip, samples, getImage, opts);
  return new Blob([zipSync(zip)], { type: 'application/zip' });
}
