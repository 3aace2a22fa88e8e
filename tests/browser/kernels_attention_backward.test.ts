// Attention backward on WebGPU: the forward's saved log-sum-exp and the three backward kernels
// (delta, dq, dk/dv) against the CPU twins on odd shapes (GQA, causal with kv offset, key masks
// with a row that sees no key, forced small tiles); then tf.grads through the custom attention
// op against tf.grads through the stock one, tensor leaks across repeated steps, and peak
// memory (no (T, S) buffer).
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend, peakBytes, resetPeakBytes } from '../../src/engine/backend';
import {
  attentionBackward as gpuBackward,
  attentionForward as gpuForward,
  attentionForwardWithLse,
  type AttentionBackwardTiling,
  type AttentionTiling,
} from '../../src/engine/kernels/attention';
import { attentionBackward, attentionForward, type AttentionDims } from '../../src/engine/cpu/attention';
import { createCustomOps } from '../../src/engine/ops/custom_ops';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import type { AttentionOptions } from '../../src/engine/ops/ops';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng));
}

/** Batch 0 pads its first S - T + 2 keys (so causal row 0 sees none when T < S); batch 1 has a hole. */
function makeMask(B: number, T: number, S: number): Float32Array {
  const mask = new Float32Array(B * S).fill(1);
  for (let j = 0; j < Math.min(S - 1, S - T + 2); j++) mask[j] = 0;
  if (B > 1) mask[S + (S >> 1)] = 0;
  return mask;
}

beforeAll(async () => {
  await initEngineBackend();
});

interface Case {
  d: AttentionDims;
  causal: boolean;
  masked: boolean;
  fwd?: Partial<AttentionTiling>;
  bwd?: Partial<AttentionBackwardTiling>;
}

const cases: Case[] = [
  { d: { B: 1, T: 1, S: 7, NH: 3, NKV: 1, HS: 8 }, causal: true, masked: false },
  { d: { B: 2, T: 7, S: 7, NH: 4, NKV: 2, HS: 16 }, causal: true, masked: true },
  { d: { B: 1, T: 19, S: 40, NH: 3, NKV: 1, HS: 8 }, causal: true, masked: true },
  { d: { B: 2, T: 7, S: 40, NH: 4, NKV: 2, HS: 8 }, causal: false, masked: true },
  { d: { B: 1, T: 19, S: 40, NH: 4, NKV: 2, HS: 64 }, causal: true, masked: false },
  { d: { B: 2, T: 1, S: 40, NH: 3, NKV: 1, HS: 16 }, causal: true, masked: true, fwd: { keySplits: 3 } },
  // Small tiles: many key blocks and row blocks, causal start blocks past 0, a partial last tile.
  { d: { B: 1, T: 19, S: 40, NH: 4, NKV: 2, HS: 8 }, causal: true, masked: true, bwd: { BQ: 4, BK: 4 } },
  { d: { B: 2, T: 7, S: 7, NH: 3, NKV: 1, HS: 16 }, causal: false, masked: false, fwd: { keySplits: 2, BK: 8 }, bwd: { BQ: 2, BK: 2 } },
];

describe('attention backward kernels', () => {
  for (const c of cases) {
    const { B, T, S, NH, NKV, HS } = c.d;
    const name =
      `B=${B} T=${T} S=${S} NH/NKV=${NH}/${NKV} HS=${HS} ${c.causal ? 'causal' : 'full'}${c.masked ? ' masked' : ''}` +
      `${c.fwd ? ` fwd=${JSON.stringify(c.fwd)}` : ''}${c.bwd ? ` bwd=${JSON.stringify(c.bwd)}` : ''}`;
    it(`lse and gradients match the CPU twins: ${name}`, async () => {
      const seed = B * 1000 + T * 100 + S + HS;
      const q = randArray(B * T * NH * HS, seed);
      const k = randArray(B * S * NKV * HS, seed + 1);
      const v = randArray(B * S * NKV * HS, seed + 2);
      const dOut = randArray(B * T * NH * HS, seed + 3);
      const mask = c.masked ? makeMask(B, T, S) : null;
      const scale = 1 / Math.sqrt(HS);

      const refOut = new Float32Array(B * T * NH * HS);
      const refLse = new Float32Array(B * NH * T);
      attentionForward(refOut, refLse, q, k, v, mask, c.d, c.causal, scale);
      const refDq = new Float32Array(q.length);
      const refDk = new Float32Array(k.length);
      const refDv = new Float32Array(v.length);
      attentionBackward(refDq, refDk, refDv, dOut, refOut, refLse, q, k, v, mask, c.d, c.causal, scale);

      const keyMask = mask ? tf.tensor2d(mask, [B, S]) : undefined;
      const opts: AttentionOptions = { causal: c.causal, nHeads: NH, nKvHeads: NKV, headDim: HS, scale, keyMask };
      const tq = tf.tensor3d(q, [B, T, NH * HS]);
      const tk = tf.tensor3d(k, [B, S, NKV * HS]);
      const tv = tf.tensor3d(v, [B, S, NKV * HS]);
      const tdOut = tf.tensor3d(dOut, [B, T, NH * HS]);
      const before = tf.memory().numTensors;

      // Forward with lse: out equals the plain forward, lse the CPU twin's (-Infinity included).
      const { out, lse } = attentionForwardWithLse(tq, tk, tv, opts, c.fwd);
      const plain = gpuForward(tq, tk, tv, opts, c.fwd);
      expect(lse.shape).toEqual([B, NH, T]);
      const gotLse = (await lse.data()) as Float32Array;
      expect(Array.from(gotLse, (x) => x === -Infinity)).toEqual(Array.from(refLse, (x) => x === -Infinity));
      const finite = (x: Float32Array) => x.map((y) => (y === -Infinity ? 0 : y));
      expectClose(finite(gotLse), finite(refLse), 2e-5, 1e-5, 'lse');
      expectClose((await out.data()) as Float32Array, (await plain.data()) as Float32Array, 0, 0, 'out vs plain forward');
      if (mask && c.causal && T > 1) expect(refLse[0]).toBe(-Infinity); // the empty-row case is exercised

      // Backward from the CPU's out and lse, so this compares the backward kernels alone.
      const tOut = tf.tensor3d(refOut, [B, T, NH * HS]);
      const tLse = tf.tensor3d(refLse, [B, NH, T]);
      const { dq, dk, dv } = gpuBackward(tdOut, tOut, tLse, tq, tk, tv, opts, c.bwd);
      // out, lse, plain, tOut, tLse, dq, dk, dv: the packed buffers and D are freed.
      expect(tf.memory().numTensors).toBe(before + 8);
      expect(dk.shape).toEqual([B, S, NKV * HS]);
      const gotDq = (await dq.data()) as Float32Array;
      const gotDk = (await dk.data()) as Float32Array;
      const gotDv = (await dv.data()) as Float32Array;
      for (const g of [gotDq, gotDk, gotDv]) expect(g.every(Number.isFinite)).toBe(true);
      expectClose(gotDq, refDq, 5e-5, 5e-4, 'dq');
      expectClose(gotDk, refDk, 5e-5, 5e-4, 'dk');
      expectClose(gotDv, refDv, 5e-5, 5e-4, 'dv');
      tf.dispose([out, lse, plain, tOut, tLse, dq, dk, dv, tq, tk, tv, tdOut, keyMask]);
    });
  }
});

describe('attention backward input checks', () => {
  it('names the tensor whose shape does not fit', () => {
    const q = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const kv = tf.zeros([1, 3, 8]) as tf.Tensor3D;
    const lse = tf.zeros([1, 2, 2]) as tf.Tensor3D;
    const badLse = tf.zeros([1, 2, 3]) as tf.Tensor3D;
    const opts = { causal: true, nHeads: 2, nKvHeads: 2, headDim: 4, scale: 0.5 };
    expect(() => gpuBackward(q, q, badLse, q, kv, kv, opts)).toThrow(/lse is float32 \[1,2,3\], expected float32 \(1, 2, 2\)/);
    expect(() => gpuBackward(kv, q, lse, q, kv, kv, opts)).toThrow(/dOut is float32 \[1,3,8\]/);
    expect(() => gpuBackward(q, q, lse, q, kv, kv, opts, { BQ: 16, BK: 512 })).toThrow(/exceed 16 KiB/);
    tf.dispose([q, kv, lse, badLse]);
  });
});

describe('attention gradients through the ops', () => {
  const custom = createCustomOps();
  const stock = createStockOps();

  interface GradCase {
    d: AttentionDims;
    causal: boolean;
    masked: boolean;
  }
  const gradCases: GradCase[] = [
    { d: { B: 2, T: 7, S: 7, NH: 4, NKV: 2, HS: 8 }, causal: true, masked: true },
    { d: { B: 1, T: 7, S: 19, NH: 3, NKV: 1, HS: 16 }, causal: true, masked: false },
    { d: { B: 2, T: 1, S: 7, NH: 3, NKV: 1, HS: 8 }, causal: false, masked: true },
  ];

  for (const c of gradCases) {
    const { B, T, S, NH, NKV, HS } = c.d;
    it(`tf.grads of custom attention equal stock: B=${B} T=${T} S=${S} NH/NKV=${NH}/${NKV} HS=${HS} ${c.causal ? 'causal' : 'full'}${c.masked ? ' masked' : ''}`, async () => {
      const seed = 7 + T * 10 + S;
      const q = tf.tensor3d(randArray(B * T * NH * HS, seed), [B, T, NH * HS]);
      const k = tf.tensor3d(randArray(B * S * NKV * HS, seed + 1), [B, S, NKV * HS]);
      const v = tf.tensor3d(randArray(B * S * NKV * HS, seed + 2), [B, S, NKV * HS]);
      const w = tf.tensor3d(randArray(B * T * NH * HS, seed + 3), [B, T, NH * HS]);
      // Holes only, no row without a visible key: the stock op's gradient is NaN on such rows
      // (its softmax divides by max(l, 1e-30), whose square underflows in the gradient).
      const holes = new Float32Array(B * S).fill(1);
      for (let b = 0; b < B; b++) holes[b * S + 1 + ((S >> 1) + b) % (S - 1)] = 0;
      holes[S - 1] = 0;
      const keyMask = c.masked ? tf.tensor2d(holes, [B, S]) : undefined;
      const opts: AttentionOptions = { causal: c.causal, nHeads: NH, nKvHeads: NKV, headDim: HS, scale: 1 / Math.sqrt(HS), keyMask };
      // loss = sum(attention(q, k, v) * w), so dL/dout = w.
      const gradsOf = (attn: typeof custom.attention) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor) =>
          tf.sum(tf.mul(attn(a as tf.Tensor3D, b as tf.Tensor3D, cc as tf.Tensor3D, opts), w)),
        )([q, k, v]);
      const want = gradsOf(stock.attention);
      const before = tf.memory().numTensors;
      const got = gradsOf(custom.attention);
      // Exactly the three gradients are new: the saved out/lse and every backward buffer are freed.
      expect(tf.memory().numTensors).toBe(before + 3);
      for (const [i, label] of ['dq', 'dk', 'dv'].entries()) {
        expect(got[i].shape).toEqual(want[i].shape);
        const g = (await got[i].data()) as Float32Array;
        expect(g.every(Number.isFinite), label).toBe(true);
        expectClose(g, (await want[i].data()) as Float32Array, 5e-5, 5e-4, label);
      }
      tf.dispose([...got, ...want, q, k, v, w, keyMask]);
    });
  }

  it('leaks no tensor across repeated gradient steps, and inference saves nothing', async () => {
    const [B, T, S, NH, NKV, HS] = [1, 5, 5, 2, 1, 8];
    const q = tf.variable(tf.tensor3d(randArray(B * T * NH * HS, 1), [B, T, NH * HS]));
    const k = tf.variable(tf.tensor3d(randArray(B * S * NKV * HS, 2), [B, S, NKV * HS]));
    const v = tf.variable(tf.tensor3d(randArray(B * S * NKV * HS, 3), [B, S, NKV * HS]));
    const opts: AttentionOptions = { causal: true, nHeads: NH, nKvHeads: NKV, headDim: HS, scale: 0.35 };
    const step = () => {
      const { value, grads } = tf.variableGrads(() =>
        tf.sum(tf.square(custom.attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts))),
      );
      const gs = Object.values(grads);
      expect(gs.length).toBe(3);
      tf.dispose([value, ...gs]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    // Outside a gradient tape the op is the plain forward: one new tensor, nothing kept.
    const y = custom.attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, opts);
    expect(tf.memory().numTensors).toBe(before + 1);
    await y.data();
    tf.dispose([y, q, k, v]);
  });

  it('holds no (T, S) buffer in the backward: peak live bytes stay near the gradients', async () => {
    const [B, T, S, NH, HS] = [1, 130, 130, 2, 8];
    const q = tf.tensor3d(randArray(B * T * NH * HS, 81), [B, T, NH * HS]);
    const k = tf.tensor3d(randArray(B * S * NH * HS, 82), [B, S, NH * HS]);
    const v = tf.tensor3d(randArray(B * S * NH * HS, 83), [B, S, NH * HS]);
    const opts: AttentionOptions = { causal: true, nHeads: NH, nKvHeads: NH, headDim: HS, scale: 0.3 };
    const { out, lse } = attentionForwardWithLse(q, k, v, opts);
    const dOut = tf.onesLike(out) as tf.Tensor3D;
    await dOut.data();
    resetPeakBytes();
    const base = peakBytes();
    const { dq, dk, dv } = gpuBackward(dOut, out, lse, q, k, v, opts);
    await dq.data();
    const grow = peakBytes() - base;
    const qBytes = 4 * B * T * NH * HS; // 8 KiB each for dq, dk, dv
    const scoreBytes = 4 * B * NH * T * S; // 132 KiB: what an unfused backward would hold (P or dS)
    // dq, the packed dk/dv (2), its two slices, plus one more: tfjs counts the reshape of a
    // live slice as new bytes although it shares the buffer. D (B, NH, T) is tiny.
    expect(grow).toBeLessThanOrEqual(6 * qBytes + 4 * B * NH * T);
    expect(grow).toBeLessThan(scoreBytes / 2);
    tf.dispose([q, k, v, out, lse, dOut, dq, dk, dv]);
  });
});
