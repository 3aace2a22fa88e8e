// The trainer end to end on the shipped tiny model (q8 base, WebGPU): dataset samples and PNG
// images in the real IndexedDB workspace -> TrainingData (buildModelInputs 'train') ->
// TrainingRun (mixing, accumulation, schedule, eval, checkpoints in IndexedDB) -> TrainerCore.
//   1. Resume: a run stopped after k steps and rebuilt from its IndexedDB checkpoint with fresh
//      model, processor, data and core objects reproduces the uninterrupted run's per-step
//      losses (dropout on, so the dropout stream's resume is checked too).
//   2. PEFT: the trained adapter exported to PEFT files and imported into a fresh AdapterSet on
//      a fresh model gives the same logits as the trained model (and not the base's).
// Kept to a handful of steps: SwiftShader is slow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngineBackend, webgpuBackend } from '../../src/engine/backend';
import { loadModel, type LoadedModel } from '../../src/engine/load/load_model';
import { UrlSource } from '../../src/engine/load/sources';
import { Idefics3Model } from '../../src/engine/model/vlm';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import { createProcessor } from '../../src/engine/processor/processor';
import { CheckpointStore } from '../../src/engine/train/checkpoint';
import { TrainingData } from '../../src/engine/train/data';
import { AdapterSet } from '../../src/engine/train/lora';
import { exportPeftAdapter, importPeftAdapter } from '../../src/engine/train/peft';
import { TrainingRun } from '../../src/engine/train/run_loop';
import { TrainerCore } from '../../src/engine/train/trainer_core';
import type { RunConfig, TrainEvent } from '../../src/engine/train/train_types';
import { openDatasetDb, type DatasetDb } from '../../src/lib/dataset/db';
import type { DataKind, Sample, Split } from '../../src/lib/dataset/schema';
import { expectClose } from '../util/compare';

const CKPT_DB = 'trainer-resume-test-checkpoints';
let db: DatasetDb;
let samples: Sample[];

async function pngBlob(rgb: number[]): Promise<Blob> {
  const canvas = new OffscreenCanvas(32, 32);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = `rgb(${rgb.join(',')})`;
  ctx.fillRect(0, 0, 32, 32);
  ctx.fillStyle = 'rgb(255,255,255)';
  ctx.fillRect(4, 4, 8 + rgb[0] / 32, 8); // a mark, so images are not flat
  return canvas.convertToBlob({ type: 'image/png' });
}

async function sha256(b: Blob): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', await b.arrayBuffer());
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** The model, processor and data of one "page load": everything fresh. */
async function session() {
  const loaded: LoadedModel = await loadModel(new UrlSource('/models/tiny/'), { quantization: 'q8' });
  const f = loaded.files;
  const proc = await createProcessor(
    { tokenizerJson: f.tokenizerJson, tokenizerConfig: f.tokenizerConfig, preprocessorConfig: f.preprocessorConfig, processorConfig: f.processorConfig ?? undefined, chatTemplate: f.chatTemplate },
    loaded.config,
  );
  const model = new Idefics3Model(loaded.weights, createStockOps());
  const data = new TrainingData(proc, { getImage: (h) => db.getImage(h), maxTokens: 256, doImageSplitting: false, cacheScope: 'tiny' });
  return { loaded, proc, model, data };
}

function config(id: string): RunConfig {
  return {
    id,
    name: `resume ${id}`,
    seed: 77,
    parts: { textLora: true, connector: 'full', visionLora: false },
    // Few trainable tensors (2 layers x q_proj x A/B + the connector = 5): TrainerCore's gradient
    // check adds all squared gradient sums in one tf.addN, whose WebGPU program binds every input
    // as a storage buffer, and SwiftShader allows 8 per stage (more invalidates the pipeline and
    // every later read returns stale values; reported to the core's owner).
    lora: { r: 4, alpha: 8, dropout: 0.1, rsLora: false, targetModules: ['q_proj'] },
    optim: { lr: 2e-2, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'cosine', warmupSteps: 1 },
    stages: [{ name: 'all', filter: {}, epochs: 2, lr: 2e-2 }],
    batchSize: 2,
    gradAccumulation: 1,
    businessToGeneral: 4,
    maxTokens: 256,
    evalEvery: 2,
    checkpointEvery: 2,
    activationCheckpointing: false,
  };
}

beforeAll(async () => {
  await initEngineBackend();
  db = openDatasetDb('trainer-resume-test-dataset');
  await db.clearAll();
  const colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200], [120, 120, 120]];
  const kinds: [DataKind, Split][] = [['business', 'train'], ['business', 'train'], ['business', 'train'], ['business', 'train'], ['general_caption', 'train'], ['business', 'val']];
  const items = [];
  for (let i = 0; i < colours.length; i++) {
    const blob = await pngBlob(colours[i]);
    const hash = await sha256(blob);
    const sample: Sample = {
      v: 1,
      id: `s${i}`,
      projectId: 'p',
      images: [{ hash, type: 'image/png', width: 32, height: 32, size: blob.size, name: `c${i}.png` }],
      turns: [
        { role: 'user', text: '<image>Which colour?' },
        { role: 'assistant', text: ['red', 'green', 'blue', 'yellow', 'A plain square.', 'grey'][i] },
      ],
      split: kinds[i][1],
      kind: kinds[i][0],
      stage: 1,
      tags: [],
      source: 'test',
      createdAt: i,
      updatedAt: i,
    };
    items.push({ sample, blobs: new Map([[hash, blob]]) });
  }
  await db.putSamples(items);
  samples = await db.listSamples();
  const store = await CheckpointStore.open(CKPT_DB);
  for (const m of await store.list()) await store.delete(m.runId);
  store.close();
});

let trained: { session: Awaited<ReturnType<typeof session>>; run: TrainingRun } | null = null;
afterAll(() => {
  trained?.run.dispose();
  trained?.session.loaded.weights.dispose();
});

describe('trainer on the tiny model', () => {
  it('a run resumed from its IndexedDB checkpoint with fresh objects reproduces the uninterrupted losses', async () => {
    // Uninterrupted: 4 business + ceil(4/4) = 1 general per epoch -> 5 samples, 3 micro-batches, 3 steps; 2 epochs.
    const a = await session();
    const storeA = await CheckpointStore.open(CKPT_DB);
    const eventsA: TrainEvent[] = [];
    const runA = new TrainingRun({ config: config('A'), samples, data: a.data, createCore: (c) => new TrainerCore(a.model, c), checkpoints: storeA, onEvent: (e) => eventsA.push(e), deviceLost: webgpuBackend().device.lost });
    expect(runA.totalSteps).toBe(6);
    const resA = await runA.run();
    storeA.close();
    expect(resA.status, resA.message).toBe('done');
    const lossesA = runA.history.steps.map((s) => s.loss);
    expect(lossesA).toHaveLength(6);
    expect(lossesA.every(Number.isFinite)).toBe(true);
    expect(runA.history.evals.map((e) => e.step)).toEqual([2, 4, 6]);
    trained = { session: a, run: runA };

    // Interrupted after step 2 (mid-epoch: micro-batch 2 of 3), then everything is thrown away.
    const b = await session();
    let storeB = await CheckpointStore.open(CKPT_DB);
    const runB = new TrainingRun({
      config: config('B'),
      samples,
      data: b.data,
      createCore: (c) => new TrainerCore(b.model, c),
      checkpoints: storeB,
      onEvent: (e) => e.kind === 'step' && e.step === 2 && runB.stop(),
    });
    const resB = await runB.run();
    expect(resB).toMatchObject({ status: 'stopped', step: 2, lastCheckpoint: 2 });
    runB.dispose();
    b.loaded.weights.dispose();
    storeB.close();

    // "Page reload": new model, processor, data, store connection and core; state only from IndexedDB.
    const c = await session();
    storeB = await CheckpointStore.open(CKPT_DB);
    const cp = await storeB.load('B');
    expect(cp).toBeDefined();
    expect(cp!.position).toMatchObject({ stage: 0, epoch: 0, micro: 2 });
    const runC = new TrainingRun({ config: cp!.config, samples, data: c.data, createCore: (cfg) => new TrainerCore(c.model, cfg), checkpoints: storeB, resumeFrom: cp });
    const resC = await runC.run();
    expect(resC.status, resC.message).toBe('done');
    const lossesC = runC.history.steps.map((s) => s.loss);
    console.log(`resume test: uninterrupted ${lossesA.map((l) => l.toFixed(6)).join(' ')}; resumed ${lossesC.map((l) => l.toFixed(6)).join(' ')}`);
    expect(runC.history.steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expectClose(lossesC, lossesA, 1e-6, 0, 'per-step loss');
    expectClose(runC.history.evals.map((e) => e.valLoss), runA.history.evals.map((e) => e.valLoss), 1e-6, 0, 'val loss');
    // The loss moved: the comparison is not between two untrained curves.
    expect(Math.abs(lossesA[5] - lossesA[0])).toBeGreaterThan(1e-3);
    expect((await storeB.list('B')).at(-1)).toMatchObject({ step: 6, reason: 'final' });
    runC.dispose();
    c.loaded.weights.dispose();
    storeB.close();
  });

  it('PEFT export -> import into a fresh AdapterSet on a fresh model gives the trained logits', async () => {
    expect(trained).not.toBeNull();
    const { session: a, run } = trained!;
    const core = run.trainer as TrainerCore;
    const arrays = await core.adapters.toNamedArrays();
    const files = exportPeftAdapter(arrays, { baseModel: 'tiny', lora: config('A').lora });
    expect(files.config.modules_to_save).toEqual(['model.connector.modality_projection.proj']);

    const fresh = await session();
    const imp = await importPeftAdapter(files.configJson, files.weights, fresh.loaded.config);
    const adapters = new AdapterSet(fresh.loaded.weights, imp.parts, imp.lora, 999); // other seed: values must come from the file
    adapters.loadNamedArrays(imp.arrays);
    fresh.model.adapters = adapters;

    const inputs = (await a.data.prepare(samples.find((s) => s.id === 's0')!))!;
    core.adapters.training = false; // no dropout in the reference
    const logits = async (m: Idefics3Model) => {
      const t = m.forward(inputs, { logits: 'all' }).logits; // (T, V)
      const v = (await t.data()) as Float32Array;
      t.dispose();
      return v;
    };
    const want = await logits(a.model);
    const got = await logits(fresh.model);
    expectClose(got, want, 1e-5, 1e-5, 'logits');
    fresh.model.adapters = null;
    const base = await logits(fresh.model);
    let maxdiff = 0;
    for (let i = 0; i < base.length; i++) maxdiff = Math.max(maxdiff, Math.abs(base[i] - want[i]));
    console.log(`PEFT test: trained vs base logits maxdiff ${maxdiff}; B norm ${Math.hypot(...arrays.filter((x) => x.name.endsWith('lora_B.weight')).flatMap((x) => Array.from(x.data)))}`);
    expect(maxdiff).toBeGreaterThan(1e-3);
    adapters.dispose();
    fresh.loaded.weights.dispose();
  });
});
