import { describe, expect, it } from 'vitest';
import { zipSync, strToU8 } from 'fflate';
import { importFiles, type ImportFile, type ImportResult } from '../../src/lib/dataset/import';
import { sha256Hex } from '../../src/lib/dataset/hash';
import { baseOpts, badImage, fakeImage, textFile } from '../fixtures/dataset/fake_images';

const jsonl = (...recs: unknown[]) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
const texts = (r: ImportResult) => r.items.map((i) => i.sample.turns.map((t) => `${t.role}:${t.text}`).join('|'));
const reasons = (r: ImportResult) => r.issues.map((i) => `${i.file}${i.line ? ':' + i.line : ''} ${i.reason}`);

describe('importFiles: ShareGPT (LLaMA-Factory)', () => {
  it('reads a JSON array with role/content messages and images relative to the json folder', async () => {
    const data = [
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: '<image>Who are they?' },
          { role: 'assistant', content: 'Two players.' },
          { role: 'user', content: 'And the score?' },
          { role: 'assistant', content: '2-1' },
        ],
        images: ['imgs/a.png'],
      },
    ];
    const r = await importFiles([textFile('set/data.json', JSON.stringify(data)), fakeImage('set/imgs/a.png')], baseOpts());
    expect(r.issues).toEqual([]);
    expect(r.counts).toEqual({ samples: 1, images: 1, skipped: 0 });
    const s = r.items[0].sample;
    expect(s.turns).toEqual([
      { role: 'system', text: 'Be brief.' },
      { role: 'user', text: '<image>Who are they?' },
      { role: 'assistant', text: 'Two players.' },
      { role: 'user', text: 'And the score?' },
      { role: 'assistant', text: '2-1' },
    ]);
    expect(s.images).toHaveLength(1);
    expect(s.images[0]).toMatchObject({ width: 16, height: 12, type: 'image/png', name: 'a.png' });
    expect(s.images[0].hash).toBe(await sha256Hex(fakeImage('x', 'set/imgs/a.png').blob));
    expect(r.items[0].blobs.get(s.images[0].hash)).toBeDefined();
    expect(s).toMatchObject({ projectId: 'p1', split: 'train', kind: 'business', stage: 1, tags: [], source: 'set/data.json#1', createdAt: 1000 });
  });

  it('reads JSONL with conversations from/value and human/gpt roles, images from the dataset root', async () => {
    const files = [
      textFile('root/ann/train.jsonl', jsonl(
        { conversations: [{ from: 'human', value: '<image>Q1' }, { from: 'gpt', value: 'A1' }], images: ['pics/1.png'] },
        { conversations: [{ from: 'human', value: '<image><image>Compare' }, { from: 'gpt', value: 'same' }], images: ['pics/1.png', 'pics/2.png'] },
      )),
      fakeImage('root/pics/1.png'),
      fakeImage('root/pics/2.png'),
    ];
    const r = await importFiles(files, baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:<image>Q1|assistant:A1', 'user:<image><image>Compare|assistant:same']);
    expect(r.items[1].sample.images.map((i) => i.name)).toEqual(['1.png', '2.png']);
    expect(r.counts.images).toBe(2); // 1.png is shared: stored once
    expect(r.items[0].sample.source).toBe('root/ann/train.jsonl:1');
  });

  it('uses dataset_info.json columns and tags', async () => {
    const info = {
      my_set: {
        file_name: 'd/custom.json',
        formatting: 'sharegpt',
        columns: { messages: 'dialog', images: 'pictures', system: 'sys' },
        tags: { role_tag: 'speaker', content_tag: 'says', user_tag: 'customer', assistant_tag: 'agent' },
      },
      remote: { hf_hub_url: 'someone/dataset' },
    };
    const data = [{ sys: 'You are kind.', dialog: [{ speaker: 'customer', says: '<image>Hi' }, { speaker: 'agent', says: 'Hello' }], pictures: ['x.png'] }];
    const r = await importFiles(
      [textFile('dataset_info.json', JSON.stringify(info)), textFile('d/custom.json', JSON.stringify(data)), fakeImage('d/x.png')],
      baseOpts(),
    );
    expect(texts(r)).toEqual(['system:You are kind.|user:<image>Hi|assistant:Hello']);
    expect(reasons(r)).toEqual(['dataset_info.json dataset "remote" lives online (hf_hub_url); this app imports local files only, download it first']);
  });

  it('reads alpaca records (instruction/input/output)', async () => {
    const info = { a: { file_name: 'a.json', formatting: 'alpaca', columns: { prompt: 'instruction', query: 'input', response: 'output', images: 'images' } } };
    const data = [{ instruction: '<image>Describe', input: 'briefly', output: 'A cat.', images: ['c.png'] }];
    const r = await importFiles([textFile('dataset_info.json', JSON.stringify(info)), textFile('a.json', JSON.stringify(data)), fakeImage('c.png')], baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:<image>Describe\nbriefly|assistant:A cat.']);
  });
});

describe('importFiles: Hugging Face messages with content parts', () => {
  it('turns image parts into placeholders and takes paths from the images column', async () => {
    const rec = {
      messages: [
        { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is shown?' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'A dog.' }] },
      ],
      images: ['dog.png'],
    };
    const r = await importFiles([textFile('hf/data.jsonl', jsonl(rec)), fakeImage('hf/dog.png')], baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:<image>What is shown?|assistant:A dog.']);
  });

  it('takes image paths from the parts when there is no images column', async () => {
    const rec = { messages: [{ role: 'user', content: [{ type: 'text', text: 'Look: ' }, { type: 'image', image: 'p/q.png' }] }] };
    const r = await importFiles([textFile('x.jsonl', jsonl(rec)), fakeImage('p/q.png')], baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:Look: <image>']);
    expect(r.items[0].sample.images[0].name).toBe('q.png');
  });
});

describe('importFiles: CSV', () => {
  it('handles quoted fields with commas, newlines and escaped quotes, and optional columns', async () => {
    const csv = [
      'image,question,answer,split,kind,stage,tags',
      'a.png,"Count, please","He said ""two""\nthen left",val,general_caption,2,x;y',
      'b.png,Color?,,,,,',
    ].join('\r\n');
    const r = await importFiles([textFile('labels.csv', csv), fakeImage('a.png'), fakeImage('b.png')], baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:<image>Count, please|assistant:He said "two"\nthen left', 'user:<image>Color?']);
    expect(r.items[0].sample).toMatchObject({ split: 'val', kind: 'general_caption', stage: 2, tags: ['x', 'y'], source: 'labels.csv:2' });
    expect(r.items[1].sample).toMatchObject({ split: 'train', kind: 'business', stage: 1, tags: [], source: 'labels.csv:4' });
  });

  it('reports rows with missing images, bad meta values and a header without an image column', async () => {
    const csv = 'image,question,answer,split\nmissing.png,Q,A,\n,Q,A,\na.png,Q,A,holdout\n';
    const r = await importFiles([textFile('l.csv', csv), fakeImage('a.png'), textFile('bad.csv', 'question,answer\nQ,A\n')], baseOpts());
    expect(r.items).toHaveLength(1);
    expect(r.items[0].sample.split).toBe('train');
    const rs = reasons(r);
    expect(rs.some((x) => x.startsWith('l.csv:2 image "missing.png" not found'))).toBe(true);
    expect(rs.some((x) => x.startsWith('l.csv:3 no image file name'))).toBe(true);
    expect(rs.some((x) => x.startsWith('l.csv:4 split "holdout" is not one of train, val, test'))).toBe(true);
    expect(rs.some((x) => x.startsWith('bad.csv:1 CSV header has no image column'))).toBe(true);
  });
});

describe('importFiles: images alone and zips', () => {
  it('makes an unlabelled sample per loose image, in path order', async () => {
    const r = await importFiles([fakeImage('b.png'), fakeImage('a.png')], baseOpts());
    expect(texts(r)).toEqual(['user:<image>', 'user:<image>']);
    expect(r.items.map((i) => i.sample.source)).toEqual(['a.png', 'b.png']);
  });

  it('imports a zip with nested folders, data file and images', async () => {
    const zip = zipSync({
      'top/nested/data.jsonl': strToU8(jsonl({ messages: [{ role: 'user', content: '<image>Q' }, { role: 'assistant', content: 'A' }], images: ['../img/z.png'] })),
      'top/img/z.png': strToU8('IMG 8x8 z'),
      'top/img/extra.png': strToU8('IMG 9x9 extra'),
      '__MACOSX/top/._z.png': strToU8('junk'),
    });
    const r = await importFiles([{ path: 'bundle.zip', blob: new Blob([zip]) }], baseOpts());
    expect(reasons(r)).toEqual([]);
    expect(texts(r)).toEqual(['user:<image>Q|assistant:A', 'user:<image>']);
    expect(r.items[0].sample.images[0]).toMatchObject({ width: 8, height: 8, name: 'z.png' });
    expect(r.items[1].sample.source).toBe('bundle.zip/top/img/extra.png');
  });

  it('reports an unreadable zip and keeps the other files', async () => {
    const r = await importFiles([textFile('broken.zip', 'PK\u0003\u0004 not really'), fakeImage('ok.png')], baseOpts());
    expect(r.items).toHaveLength(1);
    expect(reasons(r)[0]).toMatch(/^broken\.zip not a readable zip archive/);
  });
});

describe('importFiles: bad input is reported, never fatal', () => {
  it('reports each bad case with file, line and reason and imports the valid rest', async () => {
    const good = { messages: [{ role: 'user', content: '<image>ok?' }, { role: 'assistant', content: 'yes' }], images: ['g.png'] };
    const lines = [
      JSON.stringify(good), // 1 ok
      '{"messages": [', // 2 unparsable
      JSON.stringify({ messages: [{ role: 'user', content: '<image>' }], images: ['nope.png'] }), // 3 missing image
      JSON.stringify({ messages: [{ role: 'user', content: 'no placeholder' }], images: ['g2.png'] }), // 4 count mismatch
      JSON.stringify({ messages: [], images: [] }), // 5 empty
      JSON.stringify({ messages: [{ role: 'robot', content: 'beep' }] }), // 6 unknown role
      JSON.stringify({ messages: [{ role: 'user', content: '<image>x' }], images: ['corrupt.png'] }), // 7 decode fails
      JSON.stringify({ messages: [{ role: 'user', content: '<image>x' }], images: ['huge.png'] }), // 8 too many px
      JSON.stringify({ messages: [{ role: 'user', content: '<image>x' }], images: ['heavy.png'] }), // 9 too many bytes
      JSON.stringify(good), // 10 duplicate of line 1
      JSON.stringify({ messages: [{ role: 'assistant', content: 'first' }] }), // 11 no user turn
      JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }), // 12 order
    ];
    const files: ImportFile[] = [
      textFile('d.jsonl', lines.join('\n')),
      fakeImage('g.png'),
      fakeImage('g2.png'),
      badImage('corrupt.png'),
      fakeImage('huge.png', 'huge', 9000, 10),
      { path: 'heavy.png', blob: new Blob(['IMG 10x10 ', new Uint8Array(3000)]) },
      textFile('notes.txt', 'hello'),
      badImage('loose_bad.png'),
    ];
    const r = await importFiles(files, { ...baseOpts(), limits: { maxBytes: 2000 } });
    expect(texts(r)).toEqual(['user:<image>ok?|assistant:yes']);
    const byLine = new Map(r.issues.filter((i) => i.file === 'd.jsonl').map((i) => [i.line, i.reason]));
    expect(byLine.get(2)).toMatch(/^not valid JSON/);
    expect(byLine.get(3)).toMatch(/image "nope.png" not found/);
    expect(byLine.get(4)).toMatch(/0 <image> placeholder\(s\) but 1 image/);
    expect(byLine.get(5)).toMatch(/empty conversation/);
    expect(byLine.get(6)).toMatch(/unknown role "robot"/);
    expect(byLine.get(7)).toMatch(/could not be decoded: cannot decode corrupt\.png/);
    expect(byLine.get(8)).toMatch(/9000x10 px, over the 8192 px limit/);
    expect(byLine.get(9)).toMatch(/over the 0\.0 MB limit/);
    expect(byLine.get(10)).toMatch(/duplicate: same images and turns as d\.jsonl line 1/);
    expect(byLine.get(11)).toMatch(/empty conversation: no user turn/);
    expect(byLine.get(12)).toMatch(/turn 2 is a "user" turn where a "assistant" turn was expected/);
    expect(reasons(r)).toContain('notes.txt not an image or a dataset file (.json, .jsonl, .csv, .zip); skipped');
    expect(reasons(r).some((x) => x.startsWith('loose_bad.png image could not be decoded'))).toBe(true);
    expect(r.counts).toEqual({ samples: 1, images: 1, skipped: 13 });
  });

  it('reports a .json file that is not JSON with its line', async () => {
    const r = await importFiles([textFile('x.json', '[\n  {"a": 1},\n  {"a": }\n]')], baseOpts());
    expect(r.items).toEqual([]);
    expect(r.issues[0].file).toBe('x.json');
    expect(r.issues[0].line).toBe(3);
    expect(r.issues[0].reason).toMatch(/^not valid JSON: .*line 3/);
  });

  it('skips loose images already stored or repeated in the import, but keeps a second question about a shared image', async () => {
    const stored = fakeImage('old.png', 'already');
    const storedHash = await sha256Hex(stored.blob);
    const q = (text: string) => ({ messages: [{ role: 'user', content: '<image>' + text }, { role: 'assistant', content: 'a' }], images: ['s.png'] });
    const files = [
      textFile('d.jsonl', jsonl(q('one'), q('two'))),
      fakeImage('s.png', 'shared'),
      fakeImage('copy_of_s.png', 'shared'),
      fakeImage('again.png', 'already'),
      fakeImage('new1.png', 'n'),
      fakeImage('new2.png', 'n'),
    ];
    const r = await importFiles(files, { ...baseOpts(), existingHashes: new Set([storedHash]) });
    expect(texts(r)).toEqual(['user:<image>one|assistant:a', 'user:<image>two|assistant:a', 'user:<image>']);
    expect(r.items[2].sample.source).toBe('new1.png');
    const rs = reasons(r);
    expect(rs).toContain('again.png duplicate: same image content as an image already in the dataset; skipped');
    expect(rs).toContain('copy_of_s.png duplicate: same image content as d.jsonl:1; skipped');
    expect(rs).toContain('new2.png duplicate: same image content as new1.png; skipped');
    expect(r.counts).toEqual({ samples: 3, images: 2, skipped: 3 });
  });

  it('skips a record identical to an existing sample and never reuses an existing id', async () => {
    const first = await importFiles([textFile('d.jsonl', jsonl({ id: 'keep-me', messages: [{ role: 'user', content: '<image>q' }], images: ['a.png'] })), fakeImage('a.png')], baseOpts());
    expect(first.items[0].sample.id).toBe('keep-me');
    const again = await importFiles(
      [
        textFile('d.jsonl', jsonl(
          { id: 'keep-me', messages: [{ role: 'user', content: '<image>q' }], images: ['a.png'] },
          { id: 'keep-me', messages: [{ role: 'user', content: '<image>other' }], images: ['a.png'] },
        )),
        fakeImage('a.png'),
      ],
      { ...baseOpts(), existingSamples: first.items.map((i) => i.sample) },
    );
    expect(texts(again)).toEqual(['user:<image>other']);
    expect(again.items[0].sample.id).toBe('id0000');
    expect(reasons(again)[0]).toMatch(/^d\.jsonl:1 duplicate: same images and turns as an existing sample/);
  });

  it('reads our extra fields and falls back to defaults with an issue for bad values', async () => {
    const rec = (extra: object) => ({ messages: [{ role: 'user', content: '<image>q' + JSON.stringify(extra) }], images: ['a.png'], ...extra });
    const r = await importFiles(
      [textFile('d.jsonl', jsonl(rec({ split: 'test', kind: 'general_instruction', stage: 3, tags: ['t1'] }), rec({ kind: 'weird', stage: 0 }))), fakeImage('a.png')],
      { ...baseOpts(), defaultSplit: 'val' },
    );
    expect(r.items.map((i) => [i.sample.split, i.sample.kind, i.sample.stage, i.sample.tags])).toEqual([
      ['test', 'general_instruction', 3, ['t1']],
      ['val', 'business', 1, []],
    ]);
    expect(reasons(r)).toEqual([
      'd.jsonl:2 kind "weird" is not one of business, general_caption, general_instruction; used "business"',
      'd.jsonl:2 stage 0 is not a whole number >= 1; used 1',
    ]);
  });
});
