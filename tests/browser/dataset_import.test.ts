// Import in a real browser: createImageBitmap decoding of a canvas-made PNG and a corrupt
// PNG, and a zip imported end to end into IndexedDB and read back through a second handle.
import { describe, expect, it } from 'vitest';
import { zipSync, strToU8 } from 'fflate';
import { browserDecodeImage, importFiles } from '../../src/lib/dataset/import';
import { openDatasetDb } from '../../src/lib/dataset/db';

async function canvasPng(w: number, h: number, color: string): Promise<Blob> {
  const c = new OffscreenCanvas(w, h);
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, w, h);
  return c.convertToBlob({ type: 'image/png' });
}

/** PNG signature and a truncated IHDR: recognised as PNG, undecodable. */
function corruptPng(): Blob {
  return new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 1, 2, 3])]);
}

describe('browserDecodeImage', () => {
  it('reads size and type of a canvas-made PNG', async () => {
    const png = await canvasPng(7, 5, '#f00');
    expect(await browserDecodeImage(png, 'red.png')).toEqual({ width: 7, height: 5, type: 'image/png' });
    // Zip entries have no MIME type: the header decides.
    expect(await browserDecodeImage(new Blob([await png.arrayBuffer()]), 'noext')).toEqual({ width: 7, height: 5, type: 'image/png' });
  });
  it('fails on a corrupt PNG with a message naming the file', async () => {
    await expect(browserDecodeImage(corruptPng(), 'broken.png')).rejects.toThrow(/"broken\.png" could not be decoded as image\/png/);
    await expect(browserDecodeImage(new Blob(['hello']), 'note')).rejects.toThrow(/"note" is not an image/);
    await expect(browserDecodeImage(new Blob(['hello']), 'note.png')).rejects.toThrow(/"note\.png" could not be decoded/);
  });
});

describe('zip import end to end', () => {
  it('imports a zip into IndexedDB; a second handle reads samples and decodable images back', async () => {
    const red = new Uint8Array(await (await canvasPng(6, 4, '#f00')).arrayBuffer());
    const blue = new Uint8Array(await (await canvasPng(3, 9, '#00f')).arrayBuffer());
    const records = [
      { messages: [{ role: 'user', content: '<image>What colour?' }, { role: 'assistant', content: 'red' }], images: ['images/red.png'], split: 'val', tags: ['colour'] },
      { messages: [{ role: 'user', content: '<image>And this?' }, { role: 'assistant', content: '?' }], images: ['images/broken.png'] },
    ];
    const zip = zipSync({
      'shop/data/train.jsonl': strToU8(records.map((r) => JSON.stringify(r)).join('\n')),
      'shop/data/images/red.png': red,
      'shop/data/images/broken.png': new Uint8Array(await corruptPng().arrayBuffer()),
      'shop/loose/blue.png': blue,
      'shop/readme.md': strToU8('# notes'),
    });
    const name = `dataset-import-test-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const db = openDatasetDb(name);
    const project = await db.getProject();
    const result = await importFiles([{ path: 'shop.zip', blob: new Blob([zip]) }], { projectId: project.id, decodeImage: browserDecodeImage });
    expect(result.counts).toEqual({ samples: 2, images: 2, skipped: 2 });
    expect(result.issues.map((i) => `${i.file}${i.line ? ':' + i.line : ''}`).sort()).toEqual(['shop.zip/shop/data/train.jsonl:2', 'shop.zip/shop/readme.md']);
    expect(result.issues.find((i) => i.line === 2)!.reason).toMatch(/images\/broken\.png.*could not be decoded/);
    await db.putSamples(result.items);

    const again = openDatasetDb(name);
    const samples = await again.listSamples();
    expect(samples.map((s) => s.turns.map((t) => t.text).join(' / '))).toEqual(['<image>What colour? / red', '<image>']);
    expect(samples[0]).toMatchObject({ split: 'val', tags: ['colour'], projectId: project.id });
    expect(samples[0].images[0]).toMatchObject({ width: 6, height: 4, type: 'image/png', name: 'red.png', size: red.length });
    expect(samples[1].images[0]).toMatchObject({ width: 3, height: 9, name: 'blue.png' });
    const stored = await again.getImage(samples[1].images[0].hash);
    expect(stored!.type).toBe('image/png');
    const bmp = await createImageBitmap(stored!);
    expect([bmp.width, bmp.height]).toEqual([3, 9]);
    bmp.close();
  });
});
