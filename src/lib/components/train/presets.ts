// Run presets from the playbook (§3, §4): each fills a whole RunConfig the form then edits.
//   overfit    "sharpen the axe": business data only, many epochs, a high LoRA learning rate,
//              and the loss watched on the TRAINING set. If the model cannot learn its own
//              training set, the data or the framework is broken.
//   format     format problems only: LoRA on the language model alone.
//   knowledge  new knowledge: LoRA on the language model and the vision encoder, the
//              connector trained fully.
// Learning rates are the playbook's for real models (LoRA ~1e-4); a tiny test model needs
// higher ones to move visibly in a few steps, which the form says next to the field.
import type { RunConfig } from '../../api/engine_api';
import type { StageSpec } from '../../../engine/train/train_types';

export type PresetId = 'overfit' | 'format' | 'knowledge';

export interface Preset {
  id: PresetId;
  label: string;
  /** What it is for, shown under the picker. */
  hint: string;
}

export const PRESETS: readonly Preset[] = [
  {
    id: 'overfit',
    label: 'Overfit check (train set)',
    hint: 'Business data only, 10 epochs, LoRA r 16 / alpha 32, lr 1e-4. The training loss must fall close to zero; if it does not, fix the data or the setup before anything else.',
  },
  {
    id: 'format',
    label: 'Format fix',
    hint: 'The answers have the right content but the wrong form: LoRA on the language model only, with general data mixed in 10:1.',
  },
  {
    id: 'knowledge',
    label: 'New knowledge',
    hint: 'The model must learn to see something new: LoRA on the language model and the vision encoder, connector trained fully, general data 10:1.',
  },
];

/** A fresh run id: unique per start, so checkpoints of two runs never mix. */
export function newRunId(now = Date.now()): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `run-${now.toString(36)}-${rand}`;
}

function stage(name: string, epochs: number, lr: number, filter: StageSpec['filter'] = {}): StageSpec {
  return { name, filter, epochs, lr };
}

export function presetConfig(id: PresetId, runId = newRunId()): RunConfig {
  const base: RunConfig = {
    id: runId,
    name: PRESETS.find((p) => p.id === id)!.label,
    seed: 0,
    parts: { textLora: true, connector: 'frozen', visionLora: false },
    lora: { r: 16, alpha: 32, dropout: 0.05, rsLora: false, targetModules: [] },
    optim: { lr: 1e-4, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'cosine', warmupSteps: 10 },
    stages: [stage('main', 3, 1e-4)],
    batchSize: 1,
    gradAccumulation: 4,
    businessToGeneral: 10,
    maxTokens: 2048,
    evalEvery: 20,
    checkpointEvery: 50,
    activationCheckpointing: false,
  };
  switch (id) {
    case 'overfit':
      return {
        ...base,
        lora: { ...base.lora, dropout: 0 }, // nothing may hold the model back from memorising
        optim: { ...base.optim, schedule: 'constant', warmupSteps: 0 },
        stages: [stage('business only', 10, 1e-4, { kinds: ['business'] })],
        businessToGeneral: 0,
        evalSplit: 'train',
      };
    case 'format':
      return base;
    case 'knowledge':
      return {
        ...base,
        parts: { textLora: true, connector: 'full', visionLora: true },
        stages: [stage('main', 5, 1e-4)],
      };
  }
}
