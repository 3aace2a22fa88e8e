// Engine benchmark (not a test: it asserts nothing about speed). Writes rows into
// bench/results.json: {"results":[{"name","model","path","value","unit","derived"?}]}.
//
// For each ops path ("custom" = our WGSL kernels, "stock" = plain tfjs ops):
//   - tiny model (public/models/tiny, q8): prefill (image + prompt), decode tokens/s, peak GPU bytes;
//   - SmolVLM-256M real dimensions with random q8 weights, as slices (SwiftShader runs well
//     under 1 GFLOP/s, a whole prefill takes minutes): one vision block over 1024 patches, the
//     connector, one decoder block over the prompt, the lm_head for the last token, one decoder
//     block and the lm_head for one decode step. Whole-model figures computed from slices are
//     marked derived: prefill = 12 vision blocks + connector + 30 decoder blocks + lm_head.
//   - with --full (BENCH_FULL=1): the whole 256M model once per quantization (q8, q4): prefill,
//     decode, and its peak GPU bytes.
// Training (LoRA r=16, forward + backward):
//   - tiny model: train tokens/s of whole optimiser steps (TrainerCore: micro-batch of 4, AdamW);
//   - SmolVLM-256M slices: one decoder block + final norm + lm_head with the chunked loss over
//     one image + 256 text tokens, LoRA on the block; one vision block over 1024 patches with
//     LoRA on it (when the vision encoder trains);
//   - with --full: peak GPU bytes of one whole 256M training step (q8 base, text LoRA r=16,
//     one image + 256 text tokens, batch 1).
// Compare paths as ratios measured in this one run; SwiftShader timings are not GPU timings.
import { beforeAll, test } from 'vitest';
import { commands } from 'vitest/browser';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend, peakBytes, resetPeakBytes } from '../src/engine/backend';
import type { VlmConfig } from '../src/engine/config';
import { imageSeqLen } from '../src/engine/config';
import { configFromHub } from '../src/engine/load/hub_config';
import { SMOLVLM_256M_CONFIG_JSON } from '../src/engine/load/known_configs';
import { loadModel } from '../src/engine/load/load_model';
import { randomWeights } from '../src/engine/load/random_weights';
import { UrlSource } from '../src/engine/load/sources';
import { Idefics3Model } from '../src/engine/model/vlm';
import { generate } from '../src/engine/generate/generate';
import { createCustomOps } from '../src/engine/ops/custom_ops';
import { createStockOps } from '../src/engine/ops/stock_ops';
import type { Ops } from '../src/engine/ops/ops';
import type { Quantization } from '../src/engine/weights';
import { createProcessor } from '../src/engine/processor/processor';
import { buildModelInputs } from '../src/engine/processor/build_inputs';
import type { ModelInputs } from '../src/engine/inputs';
import { AdapterSet, DEFAULT_LORA_TARGETS } from '../src/engine/train/lora';
import { chunkedCrossEntropy } from '../src/engine/train/loss';
import { TrainerCore } from '../src/engine/train/trainer_core';
import type { RunConfig, TrainableParts } from '../src/engine/train/train_types';

declare const __BENCH_FULL__: boolean;

interface Row {
  name: string;
  model: string;
  path: string;
  value: number;
  unit: string;
  derived?: boolean;
}

const RESULTS = 'bench/results.json'; // commands resolve paths from the project root
const rows: Row[] = [];
const PATHS: [string, () => Ops][] = [
  ['custom', createCustomOps],
  ['stock', createStockOps],
];
const PROMPT_TOKENS = 26; // text tokens around one 512-px image in a short question

function add(row: Row): void {
  rows.push(row);
  console.log(`${row.name} ${row.model} ${row.path}: ${row.value.toPrecision(4)} ${row.unit}${row.derived ? ' (derived)' : ''}`);
}

/** Mean milliseconds of `fn` after one warm-up call (which compiles the pipelines). */
async function timeMs(fn: () => tf.Tensor, reps: number): Promise<number> {
  const warm = fn();
  await warm.data();
  warm.dispose();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const y = fn();
    await y.data(); // forces the queued GPU work to finish
    y.dispose();
  }
  return (performance.now() - t0) / reps;
}

function randn(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/** A deterministic RGBA test picture. */
function picture(w: number, h: number) {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data[4 * i] = (i * 7) % 256;
    data[4 * i + 1] = (i * 13) % 256;
    data[4 * i + 2] = (i * 3) % 256;
    data[4 * i + 3] = 255;
  }
  return { width: w, height: h, data };
}

async function benchTiny(): Promise<void> {
  const loaded = await loadModel(new UrlSource('/models/tiny/'), { quantization: 'q8' });
  const proc = await createProcessor(loaded.files as never, loaded.config);
  const inputs: ModelInputs = buildModelInputs(proc, [{ role: 'user', text: '<image>What colour is the square?' }], [picture(48, 40)], { mode: 'generate' });
  for (const [path, makeOps] of PATHS) {
    const model = new Idefics3Model(loaded.weights, makeOps());
    const fwd = () => model.forward({ inputIds: inputs.inputIds, pixelValues: inputs.pixelValues, nTiles: inputs.nTiles }, { logits: 'last' }).logits;
    resetPeakBytes();
    const base = tf.memory().numBytes;
    add({ name: 'prefill_ms', model: 'tiny', path, value: await timeMs(fwd, 5), unit: 'ms' });
    let tps = 0;
    for (let rep = 0; rep < 2; rep++) {
      for await (const ev of generate(model, inputs, { maxNewTokens: 24, stopIds: [] })) if (ev.done) tps = ev.tokensPerSecond;
    }
    add({ name: 'decode_tokens_per_s', model: 'tiny', path, value: tps, unit: 'tokens/s' });
    add({ name: 'peak_gpu_bytes', model: 'tiny', path, value: peakBytes(), unit: 'bytes' });
    add({ name: 'peak_activation_gpu_bytes', model: 'tiny', path, value: peakBytes() - base, unit: 'bytes' });
  }
  loaded.weights.dispose();
}

/** SmolVLM-256M dimensions with one vision and one decoder layer: the slices the whole model repeats. */
async function bench256mSlices(): Promise<void> {
  const full = configFromHub(SMOLVLM_256M_CONFIG_JSON, 'SmolVLM-256M config.json');
  const cfg: VlmConfig = { ...full, vit_n_layers: 1, lm_n_layers: 1 };
  const weights = randomWeights(cfg, 'q8', 1);
  const P = (cfg.vit_img_size / cfg.vit_patch_size) ** 2; // 1024 patches per 512-px tile
  const L = imageSeqLen(cfg); // 64 image tokens
  const T = L + PROMPT_TOKENS;
  const model = 'smolvlm-256m';
  for (const [path, makeOps] of PATHS) {
    const m = new Idefics3Model(weights, makeOps());
    const xv = randn([P, cfg.vit_hidden_dim], 1) as tf.Tensor2D; // (P, C_v)
    const feats = randn([1, P, cfg.vit_hidden_dim], 2) as tf.Tensor3D; // (1, P, C_v)
    const xt = randn([T, cfg.lm_hidden_dim], 3) as tf.Tensor2D; // (T, C)
    const h1 = randn([1, cfg.lm_hidden_dim], 4) as tf.Tensor2D; // (1, C)
    const positions = tf.tensor2d(Int32Array.from({ length: T }, (_, i) => i), [1, T], 'int32');

    const vision = await timeMs(() => tf.tidy(() => m.vision.block(xv, 0, 1, P)), 1);
    add({ name: 'prefill_vision_block_ms', model, path, value: vision, unit: 'ms' });
    const connector = await timeMs(() => m.connector.forward(feats), 3);
    add({ name: 'prefill_connector_ms', model, path, value: connector, unit: 'ms' });
    const block = await timeMs(() => tf.tidy(() => m.decoder.block(xt, 0, { B: 1, T, positions })), 3);
    add({ name: `prefill_decoder_block_ms`, model, path, value: block, unit: 'ms' });
    const head = await timeMs(() => m.decoder.logits(h1), 3);
    add({ name: 'prefill_lm_head_ms', model, path, value: head, unit: 'ms' });

    // one decode step: T = 1 against the prompt's T cached keys
    const cache = m.newCache(1);
    const pre = cache.reserve(T);
    const prePos = tf.tensor2d(pre.positions, [1, T], 'int32');
    tf.tidy(() => m.decoder.block(xt, 0, { B: 1, T, positions: prePos, cache })).dispose();
    const decodeBlock = await timeMs(() => {
      const book = cache.reserve(1);
      return tf.tidy(() => m.decoder.block(h1, 0, { B: 1, T: 1, positions: tf.tensor2d(book.positions, [1, 1], 'int32'), cache }));
    }, 5);
    add({ name: 'decode_decoder_block_ms', model, path, value: decodeBlock, unit: 'ms' });
    add({ name: 'decode_lm_head_ms', model, path, value: head, unit: 'ms', derived: true });
    cache.dispose();

    const prefill = full.vit_n_layers * vision + connector + full.lm_n_layers * block + head;
    add({ name: 'prefill_ms', model, path, value: prefill, unit: 'ms', derived: true });
    const perToken = full.lm_n_layers * decodeBlock + head;
    add({ name: 'decode_tokens_per_s', model, path, value: 1000 / perToken, unit: 'tokens/s', derived: true });
    tf.dispose([xv, feats, xt, h1, positions, prePos]);
  }
  weights.dispose();
}

/** The whole 256M model once: prefill (one tile + prompt) and a few decode tokens, peak GPU bytes. */
async function bench256mFull(quant: Quantization): Promise<void> {
  const cfg = configFromHub(SMOLVLM_256M_CONFIG_JSON, 'SmolVLM-256M config.json');
  const weights = randomWeights(cfg, quant, 1);
  const L = imageSeqLen(cfg);
  const ids = new Int32Array(L + PROMPT_TOKENS).fill(100);
  ids.fill(cfg.image_token_id, 4, 4 + L);
  const pixels = new Float32Array(3 * cfg.vit_img_size * cfg.vit_img_size).map((_, i) => Math.sin(i) * 0.5);
  const inputs: ModelInputs = { inputIds: ids, pixelValues: pixels, nTiles: 1 };
  const model = `smolvlm-256m-${quant}`;
  for (const [path, makeOps] of PATHS.slice(0, 1)) {
    const m = new Idefics3Model(weights, makeOps());
    resetPeakBytes();
    let prefill = 0;
    let tps = 0;
    for await (const ev of generate(m, inputs, { maxNewTokens: 4, stopIds: [] })) {
      prefill = ev.prefillMs;
      if (ev.done) tps = ev.tokensPerSecond;
    }
    add({ name: 'prefill_ms', model, path, value: prefill, unit: 'ms' });
    add({ name: 'decode_tokens_per_s', model, path, value: tps, unit: 'tokens/s' });
    add({ name: 'peak_gpu_bytes', model, path, value: peakBytes(), unit: 'bytes' });
    add({ name: 'weights_gpu_bytes', model, path, value: weights.gpuBytes(), unit: 'bytes' });
  }
  weights.dispose();
}

const LORA = { r: 16, alpha: 32, dropout: 0, rsLora: false, targetModules: DEFAULT_LORA_TARGETS };

function benchRun(parts: TrainableParts): RunConfig {
  return {
    id: 'bench', name: 'bench', seed: 1, parts, lora: LORA,
    optim: { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'constant', warmupSteps: 0 },
    stages: [], batchSize: 4, gradAccumulation: 1, businessToGeneral: 0, maxTokens: 2048,
    evalEvery: 0, checkpointEvery: 0, activationCheckpointing: false,
  };
}

async function benchTrainTiny(): Promise<void> {
  const loaded = await loadModel(new UrlSource('/models/tiny/'), { quantization: 'q8' });
  const proc = await createProcessor(loaded.files as never, loaded.config);
  const batch = [0, 1, 2, 3].map((k) =>
    buildModelInputs(proc, [{ role: 'user', text: `<image>What is shown in picture ${k}?` }, { role: 'assistant', text: `a pattern number ${k}` }], [picture(40 + 8 * k, 32)], { mode: 'train' }),
  );
  const tokens = batch.reduce((n, b) => n + b.inputIds.length, 0);
  for (const [path, makeOps] of PATHS) {
    const model = new Idefics3Model(loaded.weights, makeOps());
    const core = new TrainerCore(model, benchRun({ textLora: true, connector: 'frozen', visionLora: false }));
    const step = async () => {
      await core.microStep(batch);
      await core.apply(1e-3);
    };
    await step(); // compiles the pipelines
    const reps = 3;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await step();
    add({ name: 'train_tokens_per_s', model: 'tiny', path, value: (reps * tokens) / ((performance.now() - t0) / 1000), unit: 'tokens/s' });
    core.dispose();
  }
  loaded.weights.dispose();
}

/** Mean ms of one forward + backward (tf.variableGrads) of `loss` after a warm-up. */
async function timeGradsMs(loss: () => tf.Scalar, vars: tf.Variable[], reps: number): Promise<number> {
  const once = async () => {
    const { value, grads } = tf.variableGrads(loss, vars);
    await value.data();
    await Promise.all(Object.values(grads).map((g) => g.data()));
    tf.dispose([value, ...Object.values(grads)]);
  };
  await once();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await once();
  return (performance.now() - t0) / reps;
}

async function benchTrain256mSlices(): Promise<void> {
  const full = configFromHub(SMOLVLM_256M_CONFIG_JSON, 'SmolVLM-256M config.json');
  const cfg: VlmConfig = { ...full, vit_n_layers: 1, lm_n_layers: 1 };
  const weights = randomWeights(cfg, 'q8', 1);
  const P = (cfg.vit_img_size / cfg.vit_patch_size) ** 2;
  const T = imageSeqLen(cfg) + 256; // one image + 256 text tokens
  const model = 'smolvlm-256m';
  const targets = Int32Array.from({ length: T }, (_, i) => (i * 7919) % cfg.lm_vocab_size);
  for (const [path, makeOps] of PATHS) {
    const ops = makeOps();
    const adapters = new AdapterSet(weights, { textLora: true, connector: 'frozen', visionLora: true }, LORA, 1);
    const vars = adapters.variables().map((v) => v.variable);
    adapters.variables().forEach((v, i) => {
      if (v.name.endsWith('lora_B.weight')) v.variable.assign(tf.randomNormal(v.variable.shape, 0, 0.01, 'float32', i));
    });
    const m = new Idefics3Model(weights, ops, { adapters });
    const xt = randn([T, cfg.lm_hidden_dim], 3) as tf.Tensor2D; // (T, C)
    const positions = tf.tensor2d(Int32Array.from({ length: T }, (_, i) => i), [1, T], 'int32');
    const lmHead = weights.linear('lm_head');
    const decMs = await timeGradsMs(() => chunkedCrossEntropy(m.decoder.forward(xt, { B: 1, T, positions }), targets, lmHead, ops), vars, 1);
    add({ name: 'train_decoder_block_lm_head_tokens_per_s', model, path, value: T / (decMs / 1000), unit: 'tokens/s' });
    await save(); // each slice takes minutes under SwiftShader: keep what is measured

    const xv = randn([P, cfg.vit_hidden_dim], 1) as tf.Tensor2D; // (P, C_v)
    const r = randn([P, cfg.vit_hidden_dim], 2); // fixed random projection as the loss
    const visMs = await timeGradsMs(() => tf.mean(tf.mul(m.vision.block(xv, 0, 1, P), r)) as tf.Scalar, vars, 1);
    add({ name: 'train_vision_block_tokens_per_s', model, path, value: P / (visMs / 1000), unit: 'tokens/s' });
    await save();
    tf.dispose([xt, positions, xv, r]);
    adapters.dispose();
  }
  weights.dispose();
}

/** Peak GPU bytes of one whole 256M training step: q8 base, text LoRA r=16, one image + 256 text tokens. */
async function benchTrain256mFull(): Promise<void> {
  const cfg = configFromHub(SMOLVLM_256M_CONFIG_JSON, 'SmolVLM-256M config.json');
  const weights = randomWeights(cfg, 'q8', 1);
  const L = imageSeqLen(cfg);
  const T = L + 256;
  const ids = Int32Array.from({ length: T }, (_, i) => 100 + (i % 1000));
  ids.fill(cfg.image_token_id, 4, 4 + L);
  const labels = new Int32Array(T).fill(-100);
  for (let t = L + 8; t < T; t++) labels[t] = ids[t];
  const pixels = new Float32Array(3 * cfg.vit_img_size * cfg.vit_img_size).map((_, i) => Math.sin(i) * 0.5);
  const inputs: ModelInputs = { inputIds: ids, pixelValues: pixels, nTiles: 1, labels };
  const run = { ...benchRun({ textLora: true, connector: 'frozen', visionLora: false }), batchSize: 1 };
  const m = new Idefics3Model(weights, createCustomOps());
  resetPeakBytes();
  const core = new TrainerCore(m, run);
  const t0 = performance.now();
  await core.microStep([inputs]);
  await core.apply(1e-3);
  const ms = performance.now() - t0;
  add({ name: 'train_step_peak_gpu_bytes', model: 'smolvlm-256m-q8', path: 'custom', value: peakBytes(), unit: 'bytes' });
  add({ name: 'train_step_ms', model: 'smolvlm-256m-q8', path: 'custom', value: ms, unit: 'ms' });
  core.dispose();
  weights.dispose();
}

async function save(): Promise<void> {
  let prev: Row[] = [];
  try {
    prev = (JSON.parse(await commands.readFile(RESULTS)) as { results: Row[] }).results;
  } catch {
    prev = [];
  }
  const key = (r: Row) => `${r.name}|${r.model}|${r.path}`;
  const mine = new Set(rows.map(key));
  const merged = [...prev.filter((r) => !mine.has(key(r))), ...rows];
  await commands.writeFile(RESULTS, JSON.stringify({ results: merged }, null, 2) + '\n');
}

// Separate tests so one part can be run alone: `npx vitest run -c bench/vitest.config.ts -t "256M full"`.
beforeAll(async () => {
  await initEngineBackend();
});

test('inference: tiny model', async () => {
  await benchTiny();
  await save();
});

test('training: tiny model', async () => {
  await benchTrainTiny();
  await save();
});

test('inference: SmolVLM-256M slices', async () => {
  await bench256mSlices();
  await save();
});

test('training: SmolVLM-256M slices', async () => {
  await benchTrain256mSlices();
  await save();
});

test.runIf(__BENCH_FULL__)('256M full: whole model inference (q8, q4) and one training step', async () => {
  for (const q of ['q8', 'q4'] as const) {
    await bench256mFull(q);
    await save();
  }
  await benchTrain256mFull();
  await save();
});
