// Samples -> training inputs: the one input path (buildModelInputs 'train'), the cache keyed by
// sample version, truncation that never cuts image tokens, and notices for skipped samples.
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTinyTokenizerFiles, TINY_PROCESSOR } from '../../scripts/fixtures/tokenizer';
import { buildModelInputs, IGNORE_INDEX } from '../../src/engine/processor/build_inputs';
import type { RgbaImage } from '../../src/engine/processor/image_processor';
import { createProcessor, type Processor } from '../../src/engine/processor/processor';
import { MemoryInputsCache, TrainingData, truncateInputs } from '../../src/engine/train/data';
import type { NoticeEvent } from '../../src/engine/train/train_types';
import type { Sample, Turn } from '../../src/lib/dataset/schema';
import { tinyConfig } from '../util/tiny_config';

const fx = makeTinyTokenizerFiles();
let proc: Processor;

beforeAll(async () => {
  proc = await createProcessor(
    {
      tokenizerJson: JSON.parse(fx.files['tokenizer.json']),
      tokenizerConfig: JSON.parse(fx.files['tokenizer_config.json']),
      preprocessorConfig: JSON.parse(fx.files['preprocessor_config.json']),
      processorConfig: JSON.parse(fx.files['processor_config.json']),
    },
    tinyConfig({
      vit_img_size: TINY_PROCESSOR.imageSize,
      vit_patch_size: TINY_PROCESSOR.patchSize,
      mp_pixel_shuffle_factor: TINY_PROCESSOR.scaleFactor,
      lm_vocab_size: fx.vocabSize,
      image_token_id: fx.specialIds.image,
      bos_token_id: fx.specialIds.bos,
      eos_token_id: fx.specialIds.eos,
      pad_token_id: fx.specialIds.pad,
    }),
  );
});

/** Fake "image files": the blob's text is the grey level; decode makes a w x h flat image. */
function images(w: number, h: number) {
  const store = new Map<string, Blob>();
  let gets = 0;
  return {
    put: (hash: string, grey: number) => store.set(hash, new Blob([String(grey)])),
    getImage: async (hash: string) => {
      gets++;
      return store.get(hash);
    },
    decode: async (blob: Blob): Promise<RgbaImage> => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4).fill(Number(await blob.text())) }),
    gets: () => gets,
  };
}

function sample(id: string, turns: Turn[], hashes: string[], updatedAt = 1): Sample {
  return {
    v: 1,
    id,
    projectId: 'p',
    images: hashes.map((hash) => ({ hash, type: 'image/png', width: 8, height: 8, size: 1, name: `${hash}.png` })),
    turns,
    split: 'train',
    kind: 'business',
    stage: 1,
    tags: [],
    source: `file.jsonl:${id}`,
    createdAt: 0,
    updatedAt,
  };
}

const qa = (answer: string): Turn[] => [
  { role: 'user', text: '<image>What is this?' },
  { role: 'assistant', text: answer },
];

describe('TrainingData', () => {
  it('builds through buildModelInputs (train) and caches by sample id + updatedAt', async () => {
    const im = images(16, 16);
    im.put('h1', 100);
    const data = new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens: 10_000 });
    const s = sample('s1', qa('A cat.'), ['h1']);
    const got = await data.prepare(s);
    const ref = buildModelInputs(proc, s.turns, [await im.decode(new Blob(['100']))], { mode: 'train' });
    expect(got).not.toBeNull();
    expect(Array.from(got!.inputIds)).toEqual(Array.from(ref.inputIds));
    expect(Array.from(got!.labels!)).toEqual(Array.from(ref.labels!));
    expect(got!.pixelValues).toEqual(ref.pixelValues);

    await data.prepare(s);
    expect(im.gets()).toBe(1); // second call: from the cache
    // An edit bumps updatedAt: the sample is prepared again, with its new answer.
    const edited = { ...s, turns: qa('A dog.'), updatedAt: 2 };
    const again = await data.prepare(edited);
    expect(im.gets()).toBe(2);
    expect(proc.decode(again!.inputIds)).toContain('A dog.');
  });

  it('truncates long answers to maxTokens with one notice, keeping every image token', async () => {
    const im = images(16, 16);
    im.put('h1', 50);
    const notices: NoticeEvent[] = [];
    const s = sample('long', qa('word '.repeat(40).trim()), ['h1']);
    const full = await new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens: 10_000 }).prepare(s);
    const T = full!.inputIds.length;
    const nImage = full!.inputIds.filter((id) => id === proc.special.image).length;
    const maxTokens = T - 20;
    const data = new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens, onNotice: (n) => notices.push(n) });
    const cut = await data.prepare(s);
    await data.prepare(s); // a later epoch: no second notice
    expect(cut!.inputIds.length).toBe(maxTokens);
    expect(cut!.labels!.length).toBe(maxTokens);
    expect(Array.from(cut!.inputIds)).toEqual(Array.from(full!.inputIds.subarray(0, maxTokens)));
    expect(cut!.inputIds.filter((id) => id === proc.special.image).length).toBe(nImage);
    expect(cut!.nTiles).toBe(full!.nTiles);
    expect(notices).toHaveLength(1);
    expect(notices[0].level).toBe('info');
    expect(notices[0].message).toMatch(/Sample long \(file\.jsonl:long\): truncated from \d+ to \d+ tokens/);
  });

  it('skips a sample whose image tokens pass maxTokens, or whose answer starts after it', async () => {
    const im = images(64, 32); // split into tiles: many image tokens
    im.put('h1', 10);
    const notices: NoticeEvent[] = [];
    const s = sample('big', qa('ok'), ['h1']);
    const probe = new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens: 10_000 });
    const full = (await probe.prepare(s))!;
    const lastImage = full.inputIds.lastIndexOf(proc.special.image);
    const firstLabel = full.labels!.findIndex((l) => l !== IGNORE_INDEX);

    const tight = new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens: lastImage, onNotice: (n) => notices.push(n) });
    expect(await tight.prepare(s)).toBeNull();
    expect(notices[0].message).toMatch(/Sample big .*skipped: its image tokens alone run to token \d+, past maxTokens = \d+/);

    const r = truncateInputs(full, firstLabel, proc);
    expect(r.kind).toBe('skip');
    if (r.kind === 'skip') expect(r.reason).toMatch(/answer starts after token/);
  });

  it('skips a sample whose image is missing, naming it; prepareMany keeps the rest in order', async () => {
    const im = images(16, 16);
    im.put('h1', 1);
    const notices: NoticeEvent[] = [];
    const data = new TrainingData(proc, { getImage: im.getImage, decode: im.decode, maxTokens: 10_000, onNotice: (n) => notices.push(n) });
    const a = sample('a', qa('yes'), ['h1']);
    const b = sample('b', qa('no'), ['gone']);
    const c = sample('c', qa('maybe'), ['h1']);
    const xs = await data.prepareMany([a, b, c]);
    expect(xs).toHaveLength(2);
    expect(proc.decode(xs[1].inputIds)).toContain('maybe');
    expect(notices).toHaveLength(1);
    expect(notices[0].message).toMatch(/Sample b .*image 1 \(gone\.png, gone…\) is not stored/);
  });
});

describe('MemoryInputsCache', () => {
  const entry = (n: number) => ({ inputIds: new Int32Array(n), pixelValues: new Float32Array(0), nTiles: 0 });
  it('evicts least recently used entries past its byte budget', () => {
    const c = new MemoryInputsCache(100);
    c.set('a', entry(10)); // 40 bytes
    c.set('b', entry(10));
    c.get('a'); // a is now the most recent
    c.set('c', entry(10)); // 120 > 100: b goes
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.usedBytes).toBe(80);
    c.set('huge', entry(1000)); // larger than the budget: not kept
    expect(c.get('huge')).toBeUndefined();
    expect(c.size).toBe(2);
  });
});
