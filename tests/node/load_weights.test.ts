// Weight naming, random weights and the GpuWeights store, on tfjs' cpu backend (the GPU path is
// covered by tests/browser/load_model.test.ts): storage kinds per tensor role, tied lm_head,
// patch embedding as a linear, quantised values against the host tensor, byte accounting.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GpuWeights, isLinearWeight } from '../../src/engine/load/gpu_weights';
import { dequantizeQ4, dequantizeQ8 } from '../../src/engine/load/quantize';
import { expectedWeightShapes, randomHostTensors, randomWeights } from '../../src/engine/load/random_weights';
import { expectedWeights, isIgnorableWeight, parameterCount } from '../../src/engine/load/weight_names';
import { expectClose } from '../util/compare';
import { tinyConfig } from '../util/tiny_config';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const c = tinyConfig();

describe('expectedWeightShapes', () => {
  it('lists every HF tensor with its shape', () => {
    const m = expectedWeightShapes(c);
    expect(m.size).toBe(3 + 16 * c.vit_n_layers + 2 + 1 + 1 + 9 * c.lm_n_layers + 1 + 1);
    expect(m.get('model.vision_model.embeddings.patch_embedding.weight')).toEqual([16, 3, 4, 4]);
    expect(m.get('model.vision_model.embeddings.position_embedding.weight')).toEqual([16, 16]);
    expect(m.get('model.vision_model.encoder.layers.1.mlp.fc1.weight')).toEqual([36, 16]);
    expect(m.get('model.vision_model.encoder.layers.1.self_attn.out_proj.bias')).toEqual([16]);
    expect(m.get('model.connector.modality_projection.proj.weight')).toEqual([32, 64]);
    expect(m.get('model.text_model.layers.1.self_attn.k_proj.weight')).toEqual([16, 32]);
    expect(m.get('model.text_model.layers.1.self_attn.o_proj.weight')).toEqual([32, 32]);
    expect(m.get('model.text_model.layers.0.mlp.down_proj.weight')).toEqual([32, 56]);
    expect(m.get('lm_head.weight')).toEqual([70, 32]);
    expect(m.has('model.text_model.layers.0.self_attn.q_proj.bias')).toBe(false);
  });

  it('drops lm_head when embeddings are tied, and then tolerates a saved copy', () => {
    const tied = tinyConfig({ lm_tie_embeddings: true });
    expect(expectedWeightShapes(tied).has('lm_head.weight')).toBe(false);
    expect(isIgnorableWeight('lm_head.weight', tied)).toBe(true);
    expect(isIgnorableWeight('lm_head.weight', c)).toBe(false);
    expect(isIgnorableWeight('model.text_model.rotary_emb.inv_freq', c)).toBe(true);
    expect(parameterCount(tied)).toBe(parameterCount(c) - 70 * 32);
  });
});

describe('randomHostTensors', () => {
  it('is deterministic per seed and per name, with the expected shapes', () => {
    const a = [...randomHostTensors(c, 7)];
    const b = [...randomHostTensors(c, 7)];
    const other = [...randomHostTensors(c, 8)];
    const shapes = expectedWeightShapes(c);
    expect(a.map((t) => t.name)).toEqual([...shapes.keys()]);
    for (let i = 0; i < a.length; i++) {
      expect(a[i].shape).toEqual(shapes.get(a[i].name));
      expect(a[i].data).toEqual(b[i].data);
      expect(a[i].data).not.toEqual(other[i].data);
    }
    // Another layer count leaves shared tensors unchanged (seeded by name).
    const deeper = new Map([...randomHostTensors(tinyConfig({ lm_n_layers: 3 }), 7)].map((t) => [t.name, t.data]));
    expect(deeper.get('model.text_model.layers.0.mlp.up_proj.weight')).toEqual(a.find((t) => t.name === 'model.text_model.layers.0.mlp.up_proj.weight')!.data);
  });

  it('gives norms near 1 and weights near std 0.02', () => {
    const ts = new Map([...randomHostTensors(tinyConfig({ lm_vocab_size: 4000 }), 1)].map((t) => [t.name, t.data]));
    const gamma = ts.get('model.text_model.norm.weight')!;
    const mean = gamma.reduce((s, v) => s + v, 0) / gamma.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.1);
    const emb = ts.get('model.text_model.embed_tokens.weight')!;
    const std = Math.sqrt(emb.reduce((s, v) => s + v * v, 0) / emb.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
  });
});

describe('GpuWeights', () => {
  const host = new Map([...randomHostTensors(c, 3)].map((t) => [t.name, t]));

  it('classifies tensors by role', () => {
    for (const [name, spec] of expectedWeights(c)) {
      expect(isLinearWeight(name, spec.shape), name).toBe(spec.role === 'linear' || spec.role === 'conv');
    }
  });

  it('stores f32 weights as given, with biases, patch conv as a linear, byte count exact', async () => {
    const w = randomWeights(c, 'f32', 3);
    try {
      const q = w.linear('model.vision_model.encoder.layers.0.self_attn.q_proj');
      expect(q.kind).toBe('f32');
      if (q.kind !== 'f32') return;
      expect(q.w.shape).toEqual([16, 16]);
      expect(await q.w.data()).toEqual(host.get('model.vision_model.encoder.layers.0.self_attn.q_proj.weight')!.data);
      expect(await q.bias!.data()).toEqual(host.get('model.vision_model.encoder.layers.0.self_attn.q_proj.bias')!.data);
      const patch = w.linear('model.vision_model.embeddings.patch_embedding');
      expect([patch.kind, patch.outF, patch.inF]).toEqual(['f32', 16, 48]);
      expect(patch.bias).toBeDefined();
      expect(w.linear('model.text_model.layers.0.mlp.gate_proj').bias).toBeUndefined();
      // The same weight by full name through tensor(), norms as plain tensors.
      expect(w.tensor('model.text_model.layers.0.mlp.gate_proj.weight').shape).toEqual([56, 32]);
      expect(w.tensor('model.text_model.norm.weight').shape).toEqual([32]);
      expect(w.has('lm_head')).toBe(true);
      expect(w.has('model.vision_model.post_layernorm.bias')).toBe(true);
      expect(w.has('model.vision_model.nothing.weight')).toBe(false);
      expect(w.gpuBytes()).toBe(parameterCount(c) * 4);
      expect(() => w.linear('model.text_model.norm')).toThrow(/not a linear weight/);
      expect(() => w.tensor('model.nope.weight')).toThrow(/model\.nope\.weight: the model has no such tensor/);
    } finally {
      w.dispose();
    }
  });

  it('returns the embedding table for a tied lm_head', () => {
    const tied = tinyConfig({ lm_tie_embeddings: true });
    const w = randomWeights(tied, 'q8', 3);
    try {
      expect(w.linear('lm_head')).toBe(w.linear('model.text_model.embed_tokens'));
      expect(w.has('lm_head.weight')).toBe(true);
    } finally {
      w.dispose();
    }
  });

  it('quantises linears to q8 and q4 within their step, keeps norms/biases/patch f32', async () => {
    for (const quant of ['q8', 'q4'] as const) {
      const w = randomWeights(c, quant, 3, 32);
      try {
        const name = 'model.text_model.layers.1.mlp.down_proj';
        const lw = w.linear(name);
        expect(lw.kind).toBe(quant);
        const ref = host.get(`${name}.weight`)!.data;
        let back: Float32Array;
        if (lw.kind === 'q8') {
          expect(lw.q.shape).toEqual([32, 14]); // ceil(56/4)
          expect(lw.q.dtype).toBe('int32');
          back = dequantizeQ8((await lw.q.data()) as Int32Array, (await lw.scale.data()) as Float32Array, 32, 56);
          expectClose(back, ref, 0.02 * 5 / 127, 0, `${quant} ${name}`);
        } else if (lw.kind === 'q4') {
          expect(lw.groupSize).toBe(8); // 56 -> largest multiple of 8 <= 32 dividing 56
          expect(lw.q.shape).toEqual([32, 7]);
          expect(lw.scale.shape).toEqual([32, 7]);
          back = dequantizeQ4((await lw.q.data()) as Int32Array, (await lw.scale.data()) as Float32Array, 32, 56, 8);
          expectClose(back, ref, 0.02 * 5 / 7, 0, `${quant} ${name}`);
        }
        expect(w.linear('lm_head').kind).toBe(quant);
        expect(w.linear('model.text_model.embed_tokens').kind).toBe(quant);
        expect(w.linear('model.vision_model.embeddings.patch_embedding').kind).toBe('f32');
        expect(w.tensor('model.vision_model.embeddings.position_embedding.weight').dtype).toBe('float32');
        expect(() => w.tensor(`${name}.weight`)).toThrow(new RegExp(`${quant}-quantised`));
        expect(w.gpuBytes()).toBeLessThan(parameterCount(c) * 4 * (quant === 'q8' ? 0.5 : 0.4));
      } finally {
        w.dispose();
      }
    }
  });

  it('rejects duplicates and wrong-sized data, and frees every tensor on dispose', () => {
    const before = tf.memory().numTensors;
    const w = randomWeights(c, 'q4', 3);
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    const t = host.get('model.text_model.norm.weight')!;
    expect(() => w.add(t)).toThrow(/given twice/);
    w.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const w2 = new GpuWeights(c, { quantization: 'f32' });
    expect(() => w2.add({ name: 'x.weight', shape: [2, 3], data: new Float32Array(5) })).toThrow(/\[2, 3\] holds 6 values but 5/);
    expect(() => w.linear('lm_head')).toThrow(/disposed/);
  });
});
