// Training pieces on tfjs' cpu backend with the stock ops (pure tfjs, f32 weights): schedules,
// loss targets and batch collation, the chunked cross-entropy against a plain full-logits one
// (values and gradients), AdamW against a plain TypeScript AdamW, adapter targets and PEFT
// semantics, a finite-difference check of d loss / d lora_B through the whole tiny model, and
// the trainer core (seeding, accumulation, state round trip, NaN guard, no tensor leaks).
// The WebGPU paths (custom kernels, q8 base) are in tests/browser/train_*.test.ts.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInputs } from '../../src/engine/inputs';
import type { GpuWeights } from '../../src/engine/load/gpu_weights';
import { Idefics3Model } from '../../src/engine/model/vlm';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import { AdapterSet, adapterTargets, DEFAULT_LORA_TARGETS, loraScale, TEXT_LORA_TARGETS } from '../../src/engine/train/lora';
import { batchLoss, chunkedCrossEntropy, collateBatch, lossTargets, perSampleLoss, tokenNll } from '../../src/engine/train/loss';
import { AdamW, clipCoefficient, globalNorm } from '../../src/engine/train/optimizer';
import { learningRate, lrFactor } from '../../src/engine/train/schedule';
import { TrainerCore } from '../../src/engine/train/trainer_core';
import type { LoraSpec, RunConfig, TrainableParts } from '../../src/engine/train/train_types';
import { mulberry32 } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';
import { tinyConfig, tinyInputs, tinyWeights } from '../util/tiny_config';

const config = tinyConfig();
const ops = createStockOps();
let weights: GpuWeights;

beforeAll(async () => {
  await tf.setBackend('cpu');
  weights = tinyWeights(config, 'f32', 7);
});
afterAll(() => weights?.dispose());

const TEXT: TrainableParts = { textLora: true, connector: 'frozen', visionLora: false };
const ALL: TrainableParts = { textLora: true, connector: 'full', visionLora: true };
const spec = (over: Partial<LoraSpec> = {}): LoraSpec => ({ r: 4, alpha: 8, dropout: 0, rsLora: false, targetModules: DEFAULT_LORA_TARGETS, ...over });

function runConfig(over: Partial<RunConfig> = {}): RunConfig {
  return {
    id: 'r',
    name: 'test',
    seed: 5,
    parts: TEXT,
    lora: spec(),
    optim: { lr: 1e-2, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'constant', warmupSteps: 0 },
    stages: [],
    batchSize: 2,
    gradAccumulation: 1,
    businessToGeneral: 0,
    maxTokens: 256,
    evalEvery: 0,
    checkpointEvery: 0,
    activationCheckpointing: false,
    ...over,
  };
}

/** A training sample: the tiny prompt with labels on its last `answer` tokens. */
function sample(seed: number, nTiles = 1, answer = 3): ModelInputs {
  const s = tinyInputs(config, { nTiles, before: 2, after: answer + 1, seed });
  const labels = new Int32Array(s.inputIds.length).fill(-100);
  for (let t = s.inputIds.length - answer; t < s.inputIds.length; t++) labels[t] = s.inputIds[t];
  return { ...s, labels };
}

describe('schedules', () => {
  const base = { warmupSteps: 4, totalSteps: 14 };
  it('warm up linearly from 0, then hold, fall linearly, or follow a half cosine to 0', () => {
    for (const kind of ['constant', 'linear', 'cosine'] as const) {
      expect(lrFactor(0, { ...base, kind })).toBe(0);
      expect(lrFactor(2, { ...base, kind })).toBeCloseTo(0.5, 12);
      expect(lrFactor(4, { ...base, kind })).toBeCloseTo(1, 12);
    }
    expect(lrFactor(13, { ...base, kind: 'constant' })).toBe(1);
    expect(lrFactor(9, { ...base, kind: 'linear' })).toBeCloseTo(0.5, 12);
    expect(lrFactor(14, { ...base, kind: 'linear' })).toBe(0);
    expect(lrFactor(9, { ...base, kind: 'cosine' })).toBeCloseTo(0.5, 12);
    expect(lrFactor(6.5, { ...base, kind: 'cosine' })).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(lrFactor(14, { ...base, kind: 'cosine' })).toBeCloseTo(0, 12);
    expect(learningRate(9, { ...base, kind: 'linear', lr: 2e-4 })).toBeCloseTo(1e-4, 15);
    // no warmup: the first step runs at the peak
    expect(lrFactor(0, { warmupSteps: 0, totalSteps: 10, kind: 'cosine' })).toBe(1);
  });
});

describe('loss targets and collation', () => {
  it('shift labels by one within each row and drop -100', () => {
    const labels = Int32Array.from([-100, 5, 6, -100, /* row 2 */ -100, -100, 7, 8]);
    const { rows, targets } = lossTargets(labels, 2, 4);
    expect([...rows]).toEqual([0, 1, 5, 6]);
    expect([...targets]).toEqual([5, 6, 7, 8]);
  });

  it('pad to the longest sample on the right, mask padding, concatenate tiles in row order', () => {
    const a = sample(1, 1, 2);
    const b = sample(2, 2, 3);
    const c = collateBatch([a, b], 0);
    const T = Math.max(a.inputIds.length, b.inputIds.length);
    expect(c.T).toBe(T);
    expect(c.inputs.batch).toBe(2);
    expect(c.inputs.nTiles).toBe(3);
    expect([...c.inputs.inputIds.subarray(0, a.inputIds.length)]).toEqual([...a.inputIds]);
    expect([...c.inputs.inputIds.subarray(a.inputIds.length, T)].every((x) => x === 0)).toBe(true);
    expect(c.inputs.attentionMask![a.inputIds.length - 1]).toBe(1);
    expect(c.inputs.attentionMask![a.inputIds.length]).toBe(0);
    expect([...c.inputs.pixelValues!.subarray(a.pixelValues.length)]).toEqual([...b.pixelValues]);
    expect([...c.rowTokens]).toEqual([2, 3]);
    expect(() => collateBatch([{ ...a, labels: undefined }], 0)).toThrow(/sample 1 of 1 has no labels/);
  });
});

describe('chunked cross-entropy', () => {
  it('equals a full-logits reference in value and gradient, for chunk sizes that do not divide M', async () => {
    const M = 10;
    const C = 12;
    const V = 23;
    const rng = mulberry32(3);
    const h = tf.tensor2d(Float32Array.from({ length: M * C }, () => 2 * rng() - 1), [M, C]);
    const w = tf.tensor2d(Float32Array.from({ length: V * C }, () => 2 * rng() - 1), [V, C]);
    const targets = Int32Array.from({ length: M }, () => Math.floor(rng() * V));
    const head = { kind: 'f32' as const, inF: C, outF: V, w };
    const reference = (x: tf.Tensor2D) =>
      tf.tidy(() => {
        const logp = tf.logSoftmax(tf.matMul(x, w, false, true)); // (M, V)
        return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, 'int32'), V)), 1))) as tf.Scalar;
      });
    const ref = tf.valueAndGrad(reference)(h);
    for (const chunkRows of [1, 3, 4, 64]) {
      const got = tf.valueAndGrad((x: tf.Tensor2D) => chunkedCrossEntropy(x, targets, head, ops, { chunkRows }))(h);
      expectClose(await got.value.data(), await ref.value.data(), 1e-5, 1e-5, `loss, chunkRows ${chunkRows}`);
      expectClose(await got.grad.data(), await ref.grad.data(), 1e-6, 1e-4, `dH, chunkRows ${chunkRows}`);
      tf.dispose([got.value, got.grad]);
    }
    const nll = tokenNll(h, targets, head, ops, { chunkRows: 3 });
    expect(nll.shape).toEqual([M]);
    const mean = ((await nll.data()) as Float32Array).reduce((s, x) => s + x, 0) / M;
    expect(mean).toBeCloseTo((await ref.value.data())[0], 5);
    expect(() => chunkedCrossEntropy(h, targets.map(() => V), head, ops)).toThrow(/target 0 is token id 23, outside the vocabulary/);
    tf.dispose([h, w, ref.value, ref.grad, nll]);
  });

  it('batchLoss is the token-weighted mean of perSampleLoss', async () => {
    const model = new Idefics3Model(weights, ops);
    const batch = [sample(11, 1, 2), sample(12, 1, 4)];
    const per = await perSampleLoss(model, batch, { chunkRows: 3 });
    expect(per.map((p) => p.tokens)).toEqual([2, 4]);
    const l = batchLoss(model, collateBatch(batch, 0), { chunkRows: 3 });
    expect((await l.data())[0]).toBeCloseTo((per[0].loss * 2 + per[1].loss * 4) / 6, 4);
    // a sample alone gives the loss it has in the padded batch (padding changes nothing)
    const alone = await perSampleLoss(model, [batch[0]]);
    expect(alone[0].loss).toBeCloseTo(per[0].loss, 4);
    l.dispose();
  });
});

describe('AdamW', () => {
  it('matches a plain AdamW (decoupled decay, bias correction) over steps, and round-trips its moments', async () => {
    const hp = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
    const rng = mulberry32(9);
    const p0 = Float64Array.from({ length: 6 }, () => 2 * rng() - 1);
    const gs = [0, 1, 2].map(() => Float64Array.from({ length: 6 }, () => 2 * rng() - 1));
    const lrs = [0.1, 0.05, 0.02];
    // plain reference
    const p = Float64Array.from(p0);
    const m = new Float64Array(6);
    const v = new Float64Array(6);
    gs.forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < 6; i++) {
        p[i] *= 1 - lrs[k] * hp.weightDecay;
        m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g[i];
        v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g[i] * g[i];
        p[i] -= (lrs[k] * (m[i] / (1 - hp.beta1 ** t))) / (Math.sqrt(v[i] / (1 - hp.beta2 ** t)) + hp.eps);
      }
    });
    const variable = tf.variable(tf.tensor2d(Float32Array.from(p0), [2, 3]));
    const opt = new AdamW([{ name: 'w', variable }], hp);
    gs.forEach((g, k) => {
      const gt = tf.tensor2d(Float32Array.from(g), [2, 3]);
      opt.step([gt], lrs[k]);
      gt.dispose();
    });
    expectClose(await variable.data(), p, 1e-6, 1e-5, 'AdamW params');
    const moments = await opt.moments();
    expect(moments.map((x) => x.name)).toEqual(['w.m', 'w.v']);
    expectClose(moments[0].data, m, 1e-7, 1e-5, 'm');
    const opt2 = new AdamW([{ name: 'w', variable }], hp);
    opt2.loadMoments(moments, 3);
    expect(opt2.t).toBe(3);
    expectClose((await opt2.moments())[1].data, v, 1e-9, 1e-5, 'v restored');
    expect(() => opt2.loadMoments([], 3)).toThrow(/moment w.m is missing/);
    opt.dispose();
    opt2.dispose();
    variable.dispose();
  });

  it('global norm and clip coefficient', async () => {
    const n = globalNorm([tf.tensor1d([3, 0]), tf.tensor2d([[0, 4]])]);
    expect((await n.data())[0]).toBeCloseTo(5, 6);
    expect(clipCoefficient(5, 1)).toBeCloseTo(0.2, 6);
    expect(clipCoefficient(0.5, 1)).toBe(1);
    expect(clipCoefficient(5, 0)).toBe(1);
    n.dispose();
  });
});

describe('adapter targets and PEFT semantics', () => {
  it('targets per part, never by bare suffix across parts', () => {
    const L = config.lm_n_layers;
    const Lv = config.vit_n_layers;
    const text = adapterTargets(config, TEXT, { targetModules: [...TEXT_LORA_TARGETS] });
    expect(text.lora.length).toBe(7 * L);
    expect(text.full.length).toBe(0);
    expect(text.lora.every((m) => m.name.startsWith('model.text_model.layers.'))).toBe(true);
    expect(text.lora[0]).toEqual({ name: 'model.text_model.layers.0.self_attn.q_proj', inF: 32, outF: 32 });
    const qOnly = adapterTargets(config, TEXT, { targetModules: ['q_proj'] });
    expect(qOnly.lora.map((m) => m.name)).toEqual([...Array(L).keys()].map((l) => `model.text_model.layers.${l}.self_attn.q_proj`));
    const all = adapterTargets(config, ALL, { targetModules: DEFAULT_LORA_TARGETS });
    expect(all.lora.length).toBe(7 * L + 6 * Lv);
    expect(all.full.map((m) => m.name)).toEqual(['model.connector.modality_projection.proj']);
    const conLora = adapterTargets(config, { textLora: false, visionLora: false, connector: 'lora' }, { targetModules: ['q_proj'] });
    expect(conLora.lora.map((m) => m.name)).toEqual(['model.connector.modality_projection.proj']);
    expect(loraScale({ r: 16, alpha: 32, rsLora: false })).toBe(2);
    expect(loraScale({ r: 16, alpha: 32, rsLora: true })).toBe(8);
  });

  it('a fresh adapter changes nothing; with lora_B set it adds scale * x A^T B^T; off restores the base', async () => {
    const model = new Idefics3Model(weights, ops);
    const inputs = tinyInputs(config, { nTiles: 1, seed: 4 });
    const base = model.forward(inputs, { logits: 'all' }).logits;
    const set = new AdapterSet(weights, ALL, spec({ r: 3, alpha: 6 }), 1);
    model.adapters = set;
    const fresh = model.forward(inputs, { logits: 'all' }).logits;
    expectClose(await fresh.data(), await base.data(), 1e-5, 1e-5, 'fresh adapter vs base');

    // names, shapes, init bound, seeding
    const all = set.variables();
    const q = 'base_model.model.model.text_model.layers.0.self_attn.q_proj';
    const iq = all.findIndex((v) => v.name === `${q}.lora_A.weight`);
    const vars = all.slice(iq); // from the decoder's first pair on
    expect(vars[0].variable.shape).toEqual([3, 32]);
    expect(vars[1].name).toBe(`${q}.lora_B.weight`);
    expect(vars[1].variable.shape).toEqual([32, 3]);
    expect(all[0].name).toBe('base_model.model.model.vision_model.encoder.layers.0.self_attn.q_proj.lora_A.weight');
    expect(vars.at(-1)!.name).toBe('base_model.model.model.connector.modality_projection.proj.weight');
    const a0 = (await vars[0].variable.data()) as Float32Array;
    expect(a0.every((x) => Math.abs(x) <= 1 / Math.sqrt(32))).toBe(true);
    expect(Math.max(...a0.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(32));
    expect((await vars[1].variable.data()).every((x) => x === 0)).toBe(true);
    const same = new AdapterSet(weights, ALL, spec({ r: 3, alpha: 6 }), 1);
    expect([...(await same.variables()[iq].variable.data())]).toEqual([...a0]);
    expect(same.trainedModuleNames().lora.length).toBe(7 * config.lm_n_layers + 6 * config.vit_n_layers);
    same.dispose();

    // delta = scale * x A^T B^T on one module
    const rng = mulberry32(2);
    for (const v of all) if (v.name.endsWith('lora_B.weight')) v.variable.assign(tf.randomUniform(v.variable.shape, -0.3, 0.3, 'float32', Math.floor(rng() * 1e6)));
    const x = tf.randomUniform([5, 32], -1, 1, 'float32', 8) as tf.Tensor2D;
    const d = set.delta('model.text_model.layers.0.self_attn.q_proj', x, ops)!;
    const manual = tf.tidy(() => tf.mul(tf.matMul(tf.matMul(x, vars[0].variable, false, true), vars[1].variable, false, true), 2));
    expectClose(await d.data(), await manual.data(), 1e-6, 1e-5, 'delta');
    expect(set.delta('model.text_model.embed_tokens', x, ops)).toBeNull();

    const changed = model.forward(inputs, { logits: 'all' }).logits;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(changed, base))));
    expect((await diff.data())[0]).toBeGreaterThan(1e-3);
    set.enabled = false;
    const off = model.forward(inputs, { logits: 'all' }).logits;
    expectClose(await off.data(), await base.data(), 1e-6, 1e-6, 'adapter off vs base');

    // save / load round trip
    const saved = await set.toNamedArrays();
    const other = new AdapterSet(weights, ALL, spec({ r: 3, alpha: 6 }), 99);
    other.loadNamedArrays(saved);
    expect([...(await other.variables()[iq + 1].variable.data())]).toEqual([...(await vars[1].variable.data())]);
    const wrongRank = new AdapterSet(weights, ALL, spec({ r: 2, alpha: 6 }), 1);
    expect(() => wrongRank.loadNamedArrays(saved)).toThrow(/lora_A.weight has shape \[3, 16\], the adapter expects \[2, 16\]/);
    tf.dispose([base, fresh, x, d, manual, changed, diff, off]);
    model.adapters = null;
    for (const s of [set, other, wrongRank]) s.dispose();
  });

  it('finite differences agree with autodiff for d loss / d lora_B through the whole model', async () => {
    const model = new Idefics3Model(weights, ops);
    const set = new AdapterSet(weights, ALL, spec({ r: 2, alpha: 4 }), 3);
    model.adapters = set;
    // non-zero B so that every path (A and B) carries gradient
    for (const v of set.variables()) if (v.name.endsWith('lora_B.weight')) v.variable.assign(tf.randomUniform(v.variable.shape, -0.2, 0.2, 'float32', 5));
    const batch = collateBatch([sample(21, 1, 3), sample(22, 1, 2)], 0);
    const vars = set.variables();
    const { grads } = tf.variableGrads(() => batchLoss(model, batch), vars.map((v) => v.variable));
    const lossAt = async () => {
      const l = batchLoss(model, batch);
      const x = (await l.data())[0];
      l.dispose();
      return x;
    };
    const eps = 1e-2;
    let checked = 0;
    for (const pick of [1, 5, 13]) {
      const v = vars.filter((x) => x.name.endsWith('lora_B.weight'))[pick];
      const g = (await grads[v.variable.name].data()) as Float32Array;
      const w0 = (await v.variable.data()) as Float32Array;
      // the entry with the largest gradient: the best-conditioned difference quotient
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[k])) k = i;
      const bump = async (delta: number) => {
        const w = Float32Array.from(w0);
        w[k] += delta;
        v.variable.assign(tf.tensor(w, v.variable.shape));
        return lossAt();
      };
      const fd = ((await bump(eps)) - (await bump(-eps))) / (2 * eps);
      v.variable.assign(tf.tensor(w0, v.variable.shape));
      expect(Math.abs(fd - g[k]), `${v.name}[${k}]: fd ${fd} autodiff ${g[k]}`).toBeLessThan(2e-3 + 0.03 * Math.abs(g[k]));
      checked++;
    }
    expect(checked).toBe(3);
    for (const k of Object.keys(grads)) grads[k].dispose();
    model.adapters = null;
    set.dispose();
  });
});

describe('TrainerCore', () => {
  const data = [sample(31, 1, 3), sample(32, 1, 2), sample(33, 1, 3), sample(34, 1, 4)];

  async function trainSteps(core: TrainerCore, steps: number): Promise<number[]> {
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const r1 = await core.microStep(data.slice(0, 2));
      const r2 = await core.microStep(data.slice(2, 4));
      expect(r1.finite && r2.finite).toBe(true);
      losses.push((r1.loss + r2.loss) / 2);
      const a = await core.apply(core.run.optim.lr);
      expect(a.skipped).toBe(false);
      expect(a.gradNorm).toBeGreaterThan(0);
    }
    return losses;
  }

  it('learns, repeats under the same seed, leaks nothing across steps, and resumes exactly', async () => {
    const run = runConfig({ lora: spec({ dropout: 0.1 }), parts: ALL });
    const model = new Idefics3Model(weights, ops);
    const core = new TrainerCore(model, run);
    const first = await trainSteps(core, 2);
    const before = tf.memory().numTensors;
    const more = await trainSteps(core, 3);
    expect(tf.memory().numTensors).toBe(before);
    const losses = [...first, ...more];
    expect(losses.at(-1)!).toBeLessThan(losses[0]);
    const state = await core.state();
    expect(state.step).toBe(5);
    expect(state.moments.length).toBe(2 * state.params.length);
    const next = await trainSteps(core, 2);
    core.dispose();
    expect(model.adapters).toBeNull();

    // same seed: same losses
    const again = new TrainerCore(model, run);
    expect(await trainSteps(again, 5)).toEqual(losses);
    again.dispose();

    // resume from the state after 5 steps: the next steps repeat exactly (dropout included)
    const resumed = new TrainerCore(model, run);
    resumed.load(state);
    expect(resumed.step).toBe(5);
    expect(await trainSteps(resumed, 2)).toEqual(next);
    const ev = await resumed.evalLoss(data);
    expect(ev.tokens).toBe(12);
    expect(Number.isFinite(ev.loss)).toBe(true);
    resumed.dispose();
  }, 120_000);

  it('a non-finite loss skips the update and says so', async () => {
    const model = new Idefics3Model(weights, ops);
    const core = new TrainerCore(model, runConfig());
    const st = await core.state();
    const bad = st.params.map((p, i) => (i === 1 ? { ...p, data: p.data.map(() => NaN) } : p));
    core.load({ ...st, params: bad });
    const r = await core.microStep(data.slice(0, 2));
    expect(r.finite).toBe(false);
    const a = await core.apply(1e-2);
    expect(a.skipped).toBe(true);
    expect(core.step).toBe(0);
    // an apply without micro-batches does nothing either
    expect((await core.apply(1e-2)).skipped).toBe(true);
    core.dispose();
  });
});
