// The Idefics3 model on the stock-ops path, tiny config, random weights, real WebGPU:
// shapes, the patch conv, image-feature placement, the KV-cache invariant, padded batches,
// the image-count check, and tensor hygiene.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngineBackend } from '../../src/engine/backend';
import { imageSeqLen } from '../../src/engine/config';
import type { ModelInputs } from '../../src/engine/inputs';
import { Idefics3Model } from '../../src/engine/model/vlm';
import type { GpuWeights } from '../../src/engine/load/gpu_weights';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import { expectClose } from '../util/compare';
import { tinyConfig, tinyInputs, tinyWeights } from '../util/tiny_config';

const config = tinyConfig();
let weights: GpuWeights;
let model: Idefics3Model;

async function logitsOf(inputs: Parameters<Idefics3Model['forward']>[0], which: 'all' | 'last' = 'all'): Promise<Float32Array> {
  const { logits } = model.forward(inputs, { logits: which });
  const out = (await logits.data()) as Float32Array;
  logits.dispose();
  return out;
}

beforeAll(async () => {
  await initEngineBackend();
  weights = tinyWeights(config, 'f32', 7);
  model = new Idefics3Model(weights, createStockOps());
});

afterAll(() => weights?.dispose());

describe('Idefics3Model (stock ops)', () => {
  it('vision encoder and connector shapes for 1 and 3 tiles', async () => {
    const P = (config.vit_img_size / config.vit_patch_size) ** 2;
    for (const n of [1, 3]) {
      const px = tf.randomUniform([n, 3, config.vit_img_size, config.vit_img_size], -1, 1) as tf.Tensor4D;
      const v = model.vision.forward(px);
      expect(v.shape).toEqual([n, P, config.vit_hidden_dim]);
      const f = model.connector.forward(v);
      expect(f.shape).toEqual([n, imageSeqLen(config), config.lm_hidden_dim]);
      const vals = await f.data();
      expect(vals.every(Number.isFinite)).toBe(true);
      tf.dispose([px, v, f]);
    }
  });

  it('patch embedding equals a stride-p convolution with bias', async () => {
    const n = 2;
    const H = config.vit_img_size;
    const p = config.vit_patch_size;
    const Cv = config.vit_hidden_dim;
    const px = tf.randomUniform([n, 3, H, H], -1, 1, 'float32', 3) as tf.Tensor4D;
    const got = model.vision.patchEmbeddings(px); // (N, P, C_v)
    const lw = weights.linear('model.vision_model.embeddings.patch_embedding');
    if (lw.kind !== 'f32' || !lw.bias) throw new Error('patch embedding should be f32 with bias');
    const ref = tf.tidy(() => {
      const filter = lw.w.reshape([Cv, 3, p, p]).transpose([2, 3, 1, 0]) as tf.Tensor4D; // (p, p, 3, C_v)
      const y = tf.conv2d(px.transpose([0, 2, 3, 1]) as tf.Tensor4D, filter, p, 'valid'); // (N, H/p, W/p, C_v)
      return y.add(lw.bias!).reshape([n, (H / p) ** 2, Cv]); // (N, P, C_v), patches row-major
    });
    expectClose(await got.data(), await ref.data(), 1e-5, 1e-5, 'patch embeddings');
    tf.dispose([px, got, ref]);
  });

  it('puts image features exactly at the image-token positions, in tile order', async () => {
    const inputs = tinyInputs(config, { nTiles: 2, before: 3, between: 2, after: 2, seed: 5 });
    const T = inputs.inputIds.length;
    const C = config.lm_hidden_dim;
    // reference: merge by hand on the CPU, then run the decoder on the merged embeddings
    const text = model.decoder.embed(tf.tensor1d(inputs.inputIds, 'int32'));
    const feats = model.imageFeatures(inputs.pixelValues, 2); // (2*L_img, C)
    const textV = await text.data();
    const featV = await feats.data();
    const merged = new Float32Array(T * C);
    let k = 0;
    for (let t = 0; t < T; t++) {
      const src = inputs.inputIds[t] === config.image_token_id ? featV.subarray(C * k++, C * k) : textV.subarray(C * t, C * (t + 1));
      merged.set(src, C * t);
    }
    expect(k).toBe(2 * imageSeqLen(config));
    const refT = tf.tidy(() => {
      const x = tf.tensor2d(merged, [T, C]);
      const positions = tf.tensor2d(Int32Array.from({ length: T }, (_, i) => i), [1, T], 'int32');
      return model.decoder.logits(model.decoder.forward(x, { B: 1, T, positions }));
    });
    const ref = (await refT.data()) as Float32Array;
    tf.dispose([text, feats, refT]);
    const got = await logitsOf(inputs);
    expectClose(got, ref, 1e-5, 1e-5, 'logits with hand-merged embeddings');

    // the features matter and their order matters: swapping the two tiles changes the logits
    const tile = inputs.pixelValues.length / 2;
    const swapped = new Float32Array(inputs.pixelValues.length);
    swapped.set(inputs.pixelValues.subarray(tile), 0);
    swapped.set(inputs.pixelValues.subarray(0, tile), tile);
    const gotSwapped = await logitsOf({ ...inputs, pixelValues: swapped });
    const V = config.lm_vocab_size;
    let d = 0;
    for (let i = 3 * V; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - gotSwapped[i]));
    expect(d).toBeGreaterThan(1e-2);
    // ...but not the logits before the first image token (causal)
    expectClose(gotSwapped.subarray(0, 3 * V), got.subarray(0, 3 * V), 1e-6, 1e-6, 'logits before the image');
  });

  it('refuses a wrong image-token count or pixel size with a clear error', () => {
    const inputs = tinyInputs(config, { nTiles: 1 });
    const idx = inputs.inputIds.indexOf(config.image_token_id);
    const fewer = Int32Array.from(inputs.inputIds.filter((_, i) => i !== idx));
    const before = tf.memory().numTensors;
    expect(() => model.forward({ ...inputs, inputIds: fewer }, { logits: 'last' })).toThrow(
      /hold 3 <image> tokens \(id 69\) but nTiles = 1 gives 1 x 4 = 4/,
    );
    expect(() => model.forward({ ...inputs, nTiles: 2 }, { logits: 'last' })).toThrow(/nTiles = 2/);
    expect(() => model.forward({ ...inputs, pixelValues: inputs.pixelValues.subarray(1) }, { logits: 'last' })).toThrow(/pixelValues has 767 floats/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("'last' logits are the last row of 'all'", async () => {
    const inputs = tinyInputs(config, { nTiles: 1, seed: 9 });
    const all = await logitsOf(inputs, 'all');
    const last = await logitsOf(inputs, 'last');
    const V = config.lm_vocab_size;
    expectClose(last, all.subarray(all.length - V), 1e-5, 1e-5, 'last row');
  });

  it('KV-cache decoding gives the logits of a full forward pass', async () => {
    const inputs = tinyInputs(config, { nTiles: 1, before: 2, between: 1, after: 6, seed: 11 });
    const ids = inputs.inputIds;
    const T = ids.length;
    const V = config.lm_vocab_size;
    const full = await logitsOf(inputs, 'all'); // (T, V)
    const T0 = T - 5; // prefill holds the image, then 5 single-token steps
    const cache = model.newCache(1);
    const before = tf.memory().numTensors;
    const pre = model.forward({ ...inputs, inputIds: ids.slice(0, T0) }, { cache, logits: 'all' });
    expectClose(await pre.logits.data(), full.subarray(0, T0 * V), 1e-4, 1e-4, 'prefill logits');
    pre.logits.dispose();
    for (let t = T0; t < T; t++) {
      const step = model.forward({ inputIds: ids.slice(t, t + 1) }, { cache, logits: 'last' });
      expectClose(await step.logits.data(), full.subarray(t * V, (t + 1) * V), 1e-4, 1e-4, `decode step ${t}`);
      step.logits.dispose();
    }
    expect(cache.length).toBe(T);
    // the cache holds 2 tensors per layer, nothing else survived the steps
    expect(tf.memory().numTensors).toBe(before + 2 * config.lm_n_layers);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a left-padded batch gives each row its unpadded logits, also when decoding', async () => {
    const a = tinyInputs(config, { nTiles: 1, before: 1, between: 1, after: 1, seed: 21 }); // shorter
    const b = tinyInputs(config, { nTiles: 1, before: 4, between: 2, after: 3, seed: 22 });
    const V = config.lm_vocab_size;
    const Ta = a.inputIds.length;
    const T = b.inputIds.length;
    const pad = T - Ta;
    const ids = new Int32Array(2 * T);
    const mask = new Int32Array(2 * T).fill(1);
    ids.set(a.inputIds, pad);
    mask.fill(0, 0, pad);
    ids.set(b.inputIds, T);
    const px = new Float32Array(a.pixelValues.length * 2);
    px.set(a.pixelValues, 0);
    px.set(b.pixelValues, a.pixelValues.length);
    const batch = { inputIds: ids, batch: 2, attentionMask: mask, pixelValues: px, nTiles: 2 };

    const cache = model.newCache(2);
    const { logits } = model.forward(batch, { cache, logits: 'all' }); // (2*T, V)
    const got = (await logits.data()) as Float32Array;
    logits.dispose();
    const refA = await logitsOf(a);
    const refB = await logitsOf(b);
    expectClose(got.subarray(pad * V, T * V), refA, 1e-4, 1e-4, 'row 0 (left-padded)');
    expectClose(got.subarray(T * V), refB, 1e-4, 1e-4, 'row 1');

    // one decode step for both rows: positions continue per row despite the padding
    const next = Int32Array.of(7, 8);
    const step = model.forward({ inputIds: next, batch: 2 }, { cache, logits: 'last' }); // (2, V)
    const gotStep = (await step.logits.data()) as Float32Array;
    step.logits.dispose();
    cache.dispose();
    const refA2 = await logitsOf({ ...a, inputIds: Int32Array.from([...a.inputIds, 7]) }, 'last');
    const refB2 = await logitsOf({ ...b, inputIds: Int32Array.from([...b.inputIds, 8]) }, 'last');
    expectClose(gotStep.subarray(0, V), refA2, 1e-4, 1e-4, 'row 0 decode');
    expectClose(gotStep.subarray(V), refB2, 1e-4, 1e-4, 'row 1 decode');
  });

  it('leaks no tensors across repeated forward passes', async () => {
    const inputs: ModelInputs = tinyInputs(config, { nTiles: 2, seed: 31 });
    await logitsOf(inputs); // warm-up: lets tfjs create anything it caches once
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await logitsOf(inputs, i % 2 ? 'all' : 'last');
      const cache = model.newCache(1);
      model.forward(inputs, { cache, logits: 'last' }).logits.dispose();
      model.forward({ inputIds: Int32Array.of(5) }, { cache, logits: 'last' }).logits.dispose();
      cache.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('Idefics3Model autodiff (stock ops)', () => {
  it('a loss on the logits has finite, non-zero gradients in every part of the model', async () => {
    const inputs = tinyInputs(config, { nTiles: 1, seed: 61 });
    const names = [
      'model.vision_model.embeddings.patch_embedding',
      'model.vision_model.encoder.layers.0.self_attn.q_proj',
      'model.vision_model.encoder.layers.1.mlp.fc1',
      'model.connector.modality_projection.proj',
      'model.text_model.embed_tokens',
      'model.text_model.layers.0.self_attn.k_proj',
      'model.text_model.layers.1.mlp.down_proj',
      'lm_head',
    ];
    const ws = names.map((n) => {
      const lw = weights.linear(n);
      if (lw.kind !== 'f32') throw new Error(`${n} should be f32`);
      return lw.w;
    });
    const before = tf.memory().numTensors;
    // the model reads the same tensors through `weights`, so tfjs traces them by identity
    const grads = tf.grads(() => tf.mean(tf.square(model.forward(inputs, { logits: 'all' }).logits)) as tf.Scalar)(ws);
    for (let i = 0; i < names.length; i++) {
      const g = (await grads[i].data()) as Float32Array;
      expect(g.every(Number.isFinite), names[i]).toBe(true);
      expect(g.reduce((m, v) => Math.max(m, Math.abs(v)), 0), names[i]).toBeGreaterThan(0);
    }
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
  });
});
