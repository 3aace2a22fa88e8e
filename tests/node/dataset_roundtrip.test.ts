import { describe, expect, it } from 'vitest';
import { unzipSync, strFromU8 } from 'fflate';
import { importFiles } from '../../src/lib/dataset/import';
import { exportHfMessages, exportLlamaFactory } from '../../src/lib/dataset/export';
import type { NewSample } from '../../src/lib/dataset/db';
import { baseOpts, essence, fakeImage, textFile } from '../fixtures/dataset/fake_images';

const jsonl = (...recs: unknown[]) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** A small varied dataset: system text, two images in one sample, a shared image, an unlabelled sample, our extra fields. */
async function original(): Promise<NewSample[]> {
  const recs = [
    { messages: [{ role: 'system', content: 'Answer in JSON.' }, { role: 'user', content: '<image>Price?' }, { role: 'assistant', content: '{"price": 3}' }], images: ['a.png'], split: 'val', kind: 'business', stage: 2, tags: ['hq', 'price'] },
    { messages: [{ role: 'user', content: 'Left <image> right <image> same?' }, { role: 'assistant', content: 'no' }, { role: 'user', content: 'Sure?' }, { role: 'assistant', content: 'yes, sure' }], images: ['a.png', 'b.png'], split: 'test', kind: 'general_instruction', stage: 1, tags: [] },
    { messages: [{ role: 'user', content: '<image>Describe this image in detail.' }], images: ['c.jpg'], split: 'train', kind: 'general_caption', stage: 3, tags: ['todo'] },
  ];
  const r = await importFiles([textFile('d.jsonl', jsonl(...recs)), fakeImage('a.png'), fakeImage('b.png'), fakeImage('c.jpg')], baseOpts());
  expect(r.issues).toEqual([]);
  return r.items;
}

function getter(items: NewSample[]) {
  const all = new Map<string, Blob>();
  for (const it of items) for (const [h, b] of it.blobs) all.set(h, b);
  return async (h: string) => all.get(h);
}

describe('export -> import round trip', () => {
  it('LLaMA-Factory zip restores turns, split, kind, stage, tags, images and ids', async () => {
    const items = await original();
    const samples = items.map((i) => i.sample);
    const zip = await exportLlamaFactory(samples, getter(items), { datasetName: 'shop' });
    const entries = unzipSync(new Uint8Array(await zip.arrayBuffer()));
    expect(Object.keys(entries).sort()).toEqual(
      ['data.jsonl', 'dataset_info.json', ...new Set(samples.flatMap((s) => s.images.map((i) => `images/${i.hash}.${i.type === 'image/jpeg' ? 'jpg' : 'png'}`)))].sort(),
    );
    const info = JSON.parse(strFromU8(entries['dataset_info.json']));
    expect(info.shop).toMatchObject({ file_name: 'data.jsonl', formatting: 'sharegpt', columns: { messages: 'messages', images: 'images' } });
    const first = JSON.parse(strFromU8(entries['data.jsonl']).split('\n')[0]);
    expect(first.messages[0]).toEqual({ role: 'system', content: 'Answer in JSON.' });
    expect(first.images).toEqual([`images/${samples[0].images[0].hash}.png`]);

    const back = await importFiles([{ path: 'export.zip', blob: zip }], baseOpts());
    expect(back.issues).toEqual([]);
    expect(back.items.map((i) => essence(i.sample))).toEqual(samples.map(essence));
    expect(back.items.map((i) => i.sample.id)).toEqual(samples.map((s) => s.id));
  });

  it('HF messages zip restores the same samples', async () => {
    const items = await original();
    const samples = items.map((i) => i.sample);
    const zip = await exportHfMessages(samples, getter(items));
    const entries = unzipSync(new Uint8Array(await zip.arrayBuffer()));
    const second = JSON.parse(strFromU8(entries['data.jsonl']).split('\n')[1]);
    expect(second.messages[0].content).toEqual([
      { type: 'text', text: 'Left ' },
      { type: 'image' },
      { type: 'text', text: ' right ' },
      { type: 'image' },
      { type: 'text', text: ' same?' },
    ]);
    const back = await importFiles([{ path: 'hf.zip', blob: zip }], baseOpts());
    expect(back.issues).toEqual([]);
    expect(back.items.map((i) => essence(i.sample))).toEqual(samples.map(essence));
  });

  it('export names the sample whose image is missing', async () => {
    const items = await original();
    await expect(exportLlamaFactory(items.map((i) => i.sample), async () => undefined)).rejects.toThrow(/of sample id0000 is missing from storage/);
  });
});
