// buildModelInputs: the one sample -> (ids, pixels, labels) path, with the tiny fixture processor
// and with SmolVLM-256M's image settings (512 px tiles, patch 16, scale 4 -> 64 tokens per tile).
import { describe, expect, it } from 'vitest';
import { makeTinyTokenizerFiles, TINY_PROCESSOR } from '../../scripts/fixtures/tokenizer';
import { createProcessor, type ProcessorFiles } from '../../src/engine/processor/processor';
import { buildModelInputs, IGNORE_INDEX, promptTurns } from '../../src/engine/processor/build_inputs';
import type { RgbaImage } from '../../src/engine/processor/image_processor';
import type { Turn } from '../../src/lib/dataset/schema';
import { tinyConfig } from '../util/tiny_config';

const fx = makeTinyTokenizerFiles();
const files = (): ProcessorFiles => ({
  tokenizerJson: JSON.parse(fx.files['tokenizer.json']),
  tokenizerConfig: JSON.parse(fx.files['tokenizer_config.json']),
  preprocessorConfig: JSON.parse(fx.files['preprocessor_config.json']),
  processorConfig: JSON.parse(fx.files['processor_config.json']),
});
const tinyModel = tinyConfig({
  vit_img_size: TINY_PROCESSOR.imageSize,
  vit_patch_size: TINY_PROCESSOR.patchSize,
  mp_pixel_shuffle_factor: TINY_PROCESSOR.scaleFactor,
  lm_vocab_size: fx.vocabSize,
  image_token_id: fx.specialIds.image,
  bos_token_id: fx.specialIds.bos,
  eos_token_id: fx.specialIds.eos,
  pad_token_id: fx.specialIds.pad,
});

function flat(w: number, h: number, v = 100): RgbaImage {
  return { width: w, height: h, data: new Uint8ClampedArray(w * h * 4).fill(v) };
}
const countOf = (ids: Int32Array, id: number) => ids.reduce((n, x) => n + (x === id ? 1 : 0), 0);

describe('buildModelInputs, tiny fixture', () => {
  it('generate: the template prompt with each <image> expanded for its grid', async () => {
    const proc = await createProcessor(files(), tinyModel);
    const turns: Turn[] = [{ role: 'user', text: '<image>What is this?' }];
    const inp = buildModelInputs(proc, turns, [flat(64, 32)], { mode: 'generate' });
    expect(inp.labels).toBeUndefined();
    expect(inp.nTiles).toBe(3); // 1x2 tiles + global
    expect(inp.pixelValues.length).toBe(3 * 3 * 32 * 32);
    expect(countOf(inp.inputIds, fx.specialIds.image)).toBe(inp.nTiles * TINY_PROCESSOR.imageSeqLen);
    const L = '<image>'.repeat(4);
    expect(proc.decode(inp.inputIds)).toBe(
      '<|im_start|>User:' +
        `<fake_token_around_image><row_1_col_1>${L}<fake_token_around_image><row_1_col_2>${L}\n` +
        `\n<fake_token_around_image><global-img>${L}<fake_token_around_image>` +
        'What is this?<end_of_utterance>\nAssistant:',
    );
  });

  it('train: only assistant answers and their closing <end_of_utterance> are labelled, multi-turn', async () => {
    const proc = await createProcessor(files(), tinyModel);
    const turns: Turn[] = [
      { role: 'system', text: 'Answer briefly.' },
      { role: 'user', text: '<image>What is this?' },
      { role: 'assistant', text: 'A cat.' },
      { role: 'user', text: 'And the colour? <image>' },
      { role: 'assistant', text: 'It is red.' },
    ];
    const inp = buildModelInputs(proc, turns, [flat(32, 32), flat(20, 60)], { mode: 'train' });
    const { inputIds: ids, labels } = inp;
    expect(labels).toBeDefined();
    expect(labels!.length).toBe(ids.length);
    // Labelled positions carry their own id (HF convention, shift in the loss).
    const kept: number[] = [];
    const runs: number[][] = [];
    for (let t = 0; t < ids.length; t++) {
      if (labels![t] === IGNORE_INDEX) continue;
      expect(labels![t]).toBe(ids[t]);
      kept.push(t);
      if (t === 0 || labels![t - 1] === IGNORE_INDEX) runs.push([]);
      runs[runs.length - 1].push(ids[t]);
    }
    expect(runs.map((r) => proc.decode(r))).toEqual([' A cat.<end_of_utterance>', ' It is red.<end_of_utterance>']);
    // Each labelled run directly follows "Assistant:" and is followed by a masked newline.
    for (const r of runs) expect(r[r.length - 1]).toBe(fx.specialIds.endOfUtterance);
    const firsts = kept.filter((t) => labels![t - 1] === IGNORE_INDEX);
    for (const t of firsts) expect(proc.decode(ids.slice(0, t))).toMatch(/Assistant:$/);
    expect(kept.every((t) => ids[t] !== fx.specialIds.image)).toBe(true);
    // 32x32 -> 64x64 -> 2x2 + global = 5 tiles; 20x60 -> 22x64 -> 32x64 -> 2x1 + global = 3.
    expect(inp.nTiles).toBe(8);
    expect(countOf(ids, fx.specialIds.image)).toBe(8 * TINY_PROCESSOR.imageSeqLen);
    expect(inp.pixelValues.length).toBe(8 * 3 * 32 * 32);
  });

  it('the generation prompt is a token prefix of the training sequence', async () => {
    const proc = await createProcessor(files(), tinyModel);
    const turns: Turn[] = [
      { role: 'user', text: '<image>Read the total.' },
      { role: 'assistant', text: 'The total is 42 dollars.' },
    ];
    const imgs = [flat(40, 40)];
    const train = buildModelInputs(proc, turns, imgs, { mode: 'train' });
    const gen = buildModelInputs(proc, promptTurns(turns), imgs, { mode: 'generate' });
    expect(Array.from(train.inputIds.slice(0, gen.inputIds.length))).toEqual(Array.from(gen.inputIds));
    expect(Array.from(gen.pixelValues)).toEqual(Array.from(train.pixelValues));
    // The first labelled token is the one right after the prompt.
    expect(train.labels![gen.inputIds.length - 1]).toBe(IGNORE_INDEX);
    expect(train.labels![gen.inputIds.length]).toBe(train.inputIds[gen.inputIds.length]);
  });

  it('errors name what is wrong with the sample', async () => {
    const proc = await createProcessor(files(), tinyModel);
    expect(() => buildModelInputs(proc, [{ role: 'user', text: '<image><image>Compare.' }], [flat(8, 8)], { mode: 'generate' })).toThrow(
      /2 <image> placeholder\(s\) but 1 image\(s\)/,
    );
    expect(() => buildModelInputs(proc, [{ role: 'user', text: 'Hi' }], [flat(8, 8)], { mode: 'generate' })).toThrow(/0 <image> placeholder/);
    expect(() =>
      buildModelInputs(proc, [{ role: 'user', text: 'Hi' }, { role: 'assistant', text: 'Yo' }], [], { mode: 'generate' }),
    ).toThrow(/must end with a user turn/);
    expect(() => buildModelInputs(proc, [{ role: 'user', text: 'Hi' }], [], { mode: 'train' })).toThrow(/no(ne)? .*assistant|assistant turn/);
  });

  it('createProcessor refuses files that disagree with the model config, naming file and field', async () => {
    await expect(createProcessor(files(), { ...tinyModel, vit_patch_size: 4 })).rejects.toThrow(/processor_config.json: field "image_seq_len" is 4/);
    await expect(createProcessor(files(), { ...tinyModel, vit_img_size: 64, vit_patch_size: 16 })).rejects.toThrow(
      /preprocessor_config.json: field "max_image_size.longest_edge" is 32/,
    );
    await expect(createProcessor(files(), { ...tinyModel, image_token_id: 5 })).rejects.toThrow(/image_token_id/);
    await expect(createProcessor(files(), { ...tinyModel, lm_vocab_size: 100 })).rejects.toThrow(/vocab_size is 100/);
  });
});

describe('buildModelInputs, SmolVLM-256M image settings', () => {
  // Real SmolVLM-256M processor settings: 512 px tiles, image_seq_len 64 = (512/16)^2 / 4^2.
  const smolModel = tinyConfig({
    vit_img_size: 512,
    vit_patch_size: 16,
    mp_pixel_shuffle_factor: 4,
    lm_vocab_size: fx.vocabSize,
    image_token_id: fx.specialIds.image,
  });
  const smolFiles = (longestEdge: number): ProcessorFiles => ({
    ...files(),
    preprocessorConfig: {
      ...JSON.parse(fx.files['preprocessor_config.json']),
      max_image_size: { longest_edge: 512 },
      size: { longest_edge: longestEdge },
    },
    processorConfig: { image_seq_len: 64, processor_class: 'Idefics3Processor' },
  });

  it('an unsplit 512 px image is 64 image tokens', async () => {
    const proc = await createProcessor(smolFiles(512), smolModel);
    const inp = buildModelInputs(proc, [{ role: 'user', text: '<image>Hi' }], [flat(512, 512)], { mode: 'generate', doImageSplitting: false });
    expect(inp.nTiles).toBe(1);
    expect(countOf(inp.inputIds, fx.specialIds.image)).toBe(64);
    expect(countOf(inp.inputIds, fx.specialIds.globalImg)).toBe(1);
  });

  it('a 1024x512 image splits into 2 tiles + global with row/col markers', async () => {
    const proc = await createProcessor(smolFiles(1024), smolModel);
    const inp = buildModelInputs(proc, [{ role: 'user', text: '<image>Hi' }], [flat(1024, 512)], { mode: 'generate' });
    expect(inp.nTiles).toBe(3);
    expect(inp.pixelValues.length).toBe(3 * 3 * 512 * 512);
    expect(countOf(inp.inputIds, fx.specialIds.image)).toBe(3 * 64);
    const text = proc.decode(inp.inputIds);
    expect(text.split('<row_1_col_1>').length - 1).toBe(1);
    expect(text.split('<row_1_col_2>').length - 1).toBe(1);
    expect(text).not.toContain('<row_2_col_1>');
    expect(text.split('<fake_token_around_image>').length - 1).toBe(4);
  });
});
