// Helpers shared by the dataset e2e tests and the dataset benchmark: tiny PNGs made in Node
// (so tests need no fixture files), JSONL builders, and a fresh, loaded workspace per test.
import { deflateSync } from 'node:zlib';
import { expect, type Page } from '@playwright/test';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A solid-colour RGB PNG; `seed` picks the colour, so different seeds give different bytes (hashes). */
export function makePng(width: number, height: number, seed: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc(height * (1 + 3 * width)); // (H, 1 filter byte + W*3)
  const rgb = [(seed * 37) & 255, (seed * 91 + 40) & 255, (seed * 13 + 200) & 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = y * (1 + 3 * width) + 1 + 3 * x;
      raw[o] = rgb[0];
      raw[o + 1] = rgb[1] ^ (x & 1); // a pixel pattern so that seeds never collide by colour alone
      raw[o + 2] = (rgb[2] + (seed >> 8)) & 255;
    }
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())]);
}

export interface FilePayload {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

export function pngFile(name: string, seed: number, size = 8): FilePayload {
  return { name, mimeType: 'image/png', buffer: makePng(size, size, seed) };
}

export function jsonlFile(name: string, lines: (object | string)[]): FilePayload {
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
  return { name, mimeType: 'application/jsonl', buffer: Buffer.from(text) };
}

/** A question/answer record in LLaMA-Factory's sharegpt layout, with one image. */
export function qaRecord(image: string, question: string, answer: string): object {
  return {
    messages: [
      { role: 'user', content: `<image>${question}` },
      { role: 'assistant', content: answer },
    ],
    images: [image],
  };
}

/** Opens the app on an empty dataset: deletes the IndexedDB database, then loads the page. */
export async function freshWorkspace(page: Page): Promise<void> {
  await page.goto('/');
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const r = indexedDB.deleteDatabase('vlm-workbench');
        r.onsuccess = () => resolve();
        r.onerror = () => reject(r.error);
        // The open app holds a connection; the delete completes once the reload drops it.
        r.onblocked = () => resolve();
      }),
  );
  await page.reload();
  await expect(page.getByTestId('dataset-workspace')).toHaveAttribute('data-loaded', 'true');
  await expect(page.getByTestId('filter-count')).toHaveText('0 / 0');
}

/** Picks files through the file picker and waits until the import report appears. */
export async function importViaPicker(page: Page, files: FilePayload[]): Promise<void> {
  await page.getByTestId('import-files').setInputFiles(files);
  await expect(page.getByTestId('import-report')).toBeVisible({ timeout: 60_000 });
}
