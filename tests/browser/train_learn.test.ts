// THE learning test: LoRA SFT on the shipped tiny model (/models/tiny/, q8 base, random
// weights) must learn an image-dependent answer. 16 quadrant-pattern images, one fixed question,
// each pattern's answer a different letter; after a bounded number of AdamW steps the training
// loss has fallen by a large factor and greedy generation answers >= 95% of the training set
// exactly. The tiny model's 4 image tokens per tile carry little, so the run opens all parts
// (text LoRA + vision LoRA + connector trained fully), as the playbook does for new knowledge.
// Everything goes through the product's own paths: buildModelInputs (labels), TrainerCore
// (padded micro-batches, accumulation, clipping, schedule), generate() and proc.decode.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngineBackend } from '../../src/engine/backend';
import { generate } from '../../src/engine/generate/generate';
import type { ModelInputs } from '../../src/engine/inputs';
import { loadModel, type LoadedModel } from '../../src/engine/load/load_model';
import { UrlSource } from '../../src/engine/load/sources';
import { Idefics3Model } from '../../src/engine/model/vlm';
import { createCustomOps } from '../../src/engine/ops/custom_ops';
import { buildModelInputs } from '../../src/engine/processor/build_inputs';
import type { RgbaImage } from '../../src/engine/processor/image_processor';
import { createProcessor, type Processor } from '../../src/engine/processor/processor';
import { DEFAULT_LORA_TARGETS } from '../../src/engine/train/lora';
import { learningRate } from '../../src/engine/train/schedule';
import { TrainerCore } from '../../src/engine/train/trainer_core';
import type { RunConfig } from '../../src/engine/train/train_types';

const N_CLASSES = 16;
/** The bound: training stops at the first check that reaches the target, and fails past MAX_STEPS. */
const MAX_STEPS = 100;
const FIRST_CHECK = 40;
const CHECK_EVERY = 10;
const TARGET = 0.95;
const QUESTION = '<image>Which pattern?';

let loaded: LoadedModel;
let proc: Processor;

/**
 * Image k: a 32x32 picture split in 2x2 quadrants, quadrant q bright orange when bit q of k is
 * set, dark blue otherwise. With 8-px patches and pixel shuffle 2, each of the tiny model's 4
 * image tokens covers one quadrant, so the answer depends on every image token.
 */
function patternImage(k: number): RgbaImage {
  const on = [240, 150, 40];
  const off = [20, 40, 110];
  const data = new Uint8ClampedArray(32 * 32 * 4);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const q = (y < 16 ? 0 : 2) + (x < 16 ? 0 : 1);
      data.set([...((k >> q) & 1 ? on : off), 255], (y * 32 + x) * 4);
    }
  }
  return { width: 32, height: 32, data };
}

const answerOf = (k: number) => String.fromCharCode(65 + k); // 'A'..'P'

beforeAll(async () => {
  await initEngineBackend();
  loaded = await loadModel(new UrlSource('/models/tiny/'), { quantization: 'q8' });
  const f = loaded.files;
  proc = await createProcessor(
    {
      tokenizerJson: f.tokenizerJson,
      tokenizerConfig: f.tokenizerConfig,
      preprocessorConfig: f.preprocessorConfig,
      processorConfig: f.processorConfig ?? undefined,
      chatTemplate: f.chatTemplate,
    },
    loaded.config,
  );
});
afterAll(() => loaded?.weights.dispose());

describe('LoRA SFT on the tiny model', () => {
  it('learns 16 image-dependent answers to >= 95% exact match on the training set', async () => {
    const images = Array.from({ length: N_CLASSES }, (_, k) => patternImage(k));
    // one tile per image (4 image tokens) keeps SwiftShader fast; the split is a processor option
    const build = (k: number, mode: 'train' | 'generate'): ModelInputs =>
      buildModelInputs(
        proc,
        mode === 'train'
          ? [
              { role: 'user', text: QUESTION },
              { role: 'assistant', text: answerOf(k) },
            ]
          : [{ role: 'user', text: QUESTION }],
        [images[k]],
        { mode, doImageSplitting: false },
      );
    const train = images.map((_, k) => build(k, 'train'));
    const answerTokens = train[0].labels!.filter((x) => x !== -100).length;
    expect(answerTokens).toBeGreaterThan(0);

    const run: RunConfig = {
      id: 'learn',
      name: 'learning test',
      seed: 1234,
      parts: { textLora: true, connector: 'full', visionLora: true },
      lora: { r: 8, alpha: 16, dropout: 0, rsLora: false, targetModules: DEFAULT_LORA_TARGETS },
      optim: { lr: 1e-2, weightDecay: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'constant', warmupSteps: 3 },
      stages: [],
      batchSize: 16,
      gradAccumulation: 1,
      businessToGeneral: 0,
      maxTokens: 256,
      evalEvery: 0,
      checkpointEvery: 0,
      activationCheckpointing: false,
    };
    const model = new Idefics3Model(loaded.weights, createCustomOps());
    const core = new TrainerCore(model, run);
    const sched = { kind: run.optim.schedule, lr: run.optim.lr, warmupSteps: run.optim.warmupSteps, totalSteps: MAX_STEPS };

    // exact match by greedy generation, adapters on
    const stopIds = [proc.special.endOfUtterance, ...(proc.special.eos === null ? [] : [proc.special.eos])];
    const exactMatch = async (): Promise<{ correct: number; answers: string[] }> => {
      let correct = 0;
      const answers: string[] = [];
      for (let k = 0; k < N_CLASSES; k++) {
        const tokens: number[] = [];
        for await (const e of generate(model, build(k, 'generate'), { maxNewTokens: 4, stopIds })) {
          if (e.token !== null && !stopIds.includes(e.token)) tokens.push(e.token);
        }
        const text = proc.decode(tokens).replace('<end_of_utterance>', '').trim();
        answers.push(text);
        if (text === answerOf(k)) correct++;
      }
      return { correct, answers };
    };

    const t0 = performance.now();
    const first = await core.evalLoss(train);
    const losses: number[] = [];
    let match = { correct: 0, answers: [] as string[] };
    for (let s = 0; s < MAX_STEPS; s++) {
      let sum = 0;
      for (let m = 0; m < run.gradAccumulation; m++) {
        const r = await core.microStep(train.slice(m * run.batchSize, (m + 1) * run.batchSize));
        expect(r.finite).toBe(true);
        sum += r.loss;
      }
      losses.push(sum / run.gradAccumulation);
      const a = await core.apply(learningRate(s, sched));
      expect(a.skipped).toBe(false);
      const done = s + 1;
      if (done >= FIRST_CHECK && (done - FIRST_CHECK) % CHECK_EVERY === 0) {
        match = await exactMatch();
        if (match.correct / N_CLASSES >= TARGET) break;
      }
    }
    const last = await core.evalLoss(train);
    const trainSeconds = (performance.now() - t0) / 1000;
    const { correct, answers } = match;
    console.log(
      `learning test: ${losses.length} steps x ${run.gradAccumulation} micro-batches of ${run.batchSize}, ${trainSeconds.toFixed(1)} s; ` +
        `loss ${first.loss.toFixed(3)} -> ${last.loss.toFixed(4)}; exact match ${correct}/${N_CLASSES}; answers ${answers.join(',')}; ` +
        `curve ${losses.filter((_, i) => i % 3 === 0).map((l) => l.toFixed(3)).join(' ')}`,
    );
    expect(last.loss).toBeLessThan(first.loss / 10);
    expect(correct / N_CLASSES).toBeGreaterThanOrEqual(TARGET);

    // the same model object with the adapter off is the base again: it does not know the answers
    core.adapters.enabled = false;
    const off = await core.evalLoss(train);
    core.adapters.enabled = true;
    expect(off.loss).toBeGreaterThan(last.loss * 10);

    const before = tf.memory().numTensors;
    core.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before);
  }, 480_000);
});
