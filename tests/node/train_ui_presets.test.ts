// The Train tab's pure parts: playbook presets (valid configs with the playbook's settings) and
// the dataset counts it shows before a run.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/engine/train/run_loop';
import { countTrainingData } from '../../src/lib/components/train/data_counts';
import { PRESETS, presetConfig } from '../../src/lib/components/train/presets';
import { DATASET_SCHEMA_VERSION, type Sample } from '../../src/lib/dataset/schema';

describe('run presets', () => {
  it('are valid run configs with fresh ids', () => {
    for (const p of PRESETS) {
      const c = presetConfig(p.id);
      expect(() => validateConfig(c)).not.toThrow();
      expect(c.name).toBe(p.label);
    }
    expect(presetConfig('format').id).not.toBe(presetConfig('format').id);
  });

  it('overfit check: business data only, 10 epochs, LoRA r16/alpha32 at 1e-4, evaluated on the train set', () => {
    const c = presetConfig('overfit');
    expect(c.stages).toEqual([{ name: 'business only', filter: { kinds: ['business'] }, epochs: 10, lr: 1e-4 }]);
    expect(c.lora).toMatchObject({ r: 16, alpha: 32, dropout: 0 });
    expect(c.businessToGeneral).toBe(0);
    expect(c.evalSplit).toBe('train');
  });

  it('format fix trains the language model only; new knowledge opens vision and connector too', () => {
    expect(presetConfig('format').parts).toEqual({ textLora: true, connector: 'frozen', visionLora: false });
    expect(presetConfig('format').evalSplit ?? 'val').toBe('val');
    expect(presetConfig('knowledge').parts).toEqual({ textLora: true, connector: 'full', visionLora: true });
    expect(presetConfig('knowledge').businessToGeneral).toBe(10);
  });
});

describe('countTrainingData', () => {
  const sample = (id: string, over: Partial<Sample>): Sample => ({
    v: DATASET_SCHEMA_VERSION,
    id,
    projectId: 'p',
    images: [],
    turns: [
      { role: 'user', text: 'q' },
      { role: 'assistant', text: 'a' },
    ],
    split: 'train',
    kind: 'business',
    stage: 1,
    tags: [],
    source: 'test',
    createdAt: 0,
    updatedAt: 0,
    ...over,
  });

  it('counts labelled samples by split and kind, and unlabelled train samples apart', () => {
    const c = countTrainingData([
      sample('a', {}),
      sample('b', { kind: 'general_caption' }),
      sample('c', { kind: 'general_instruction' }),
      sample('d', { split: 'val' }),
      sample('e', { split: 'test' }),
      sample('f', { turns: [{ role: 'user', text: 'q' }, { role: 'assistant', text: '  ' }] }),
    ]);
    expect(c).toEqual({ trainBusiness: 1, trainGeneral: 2, val: 1, unlabelledTrain: 1 });
  });
});
