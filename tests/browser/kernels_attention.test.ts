// The tiled online-softmax attention kernel (and its key-split + combine path) against the
// CPU twin: GQA ratios, causal with a kv offset (T < S), key masks including a row that
// sees no key, decode (T = 1) and sizes not divisible by the tile sizes.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend, peakBytes, resetPeakBytes } from '../../src/engine/backend';
import { attentionForward as gpuAttention, type AttentionTiling } from '../../src/engine/kernels/attention';
import { attentionForward, type AttentionDims } from '../../src/engine/cpu/attention';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng));
}

beforeAll(async () => {
  await initEngineBackend();
});

interface Case {
  d: AttentionDims;
  causal: boolean;
  masked: boolean;
  tiling?: Partial<AttentionTiling>;
}

const cases: Case[] = [
  { d: { B: 1, T: 1, S: 1, NH: 2, NKV: 2, HS: 8 }, causal: true, masked: false },
  { d: { B: 2, T: 7, S: 7, NH: 3, NKV: 1, HS: 16 }, causal: true, masked: false },
  { d: { B: 1, T: 19, S: 19, NH: 4, NKV: 2, HS: 8 }, causal: false, masked: true },
  { d: { B: 2, T: 7, S: 40, NH: 4, NKV: 2, HS: 16 }, causal: true, masked: true },
  { d: { B: 1, T: 19, S: 40, NH: 2, NKV: 2, HS: 64 }, causal: true, masked: false },
  { d: { B: 2, T: 1, S: 130, NH: 3, NKV: 1, HS: 16 }, causal: true, masked: true },
  { d: { B: 1, T: 1, S: 130, NH: 4, NKV: 2, HS: 64 }, causal: true, masked: false },
  // Forced key splits on small shapes: the flash-decoding partial + combine path.
  { d: { B: 2, T: 1, S: 40, NH: 3, NKV: 1, HS: 8 }, causal: true, masked: true, tiling: { keySplits: 3 } },
  { d: { B: 1, T: 7, S: 130, NH: 4, NKV: 2, HS: 16 }, causal: true, masked: true, tiling: { keySplits: 4 } },
  { d: { B: 1, T: 7, S: 40, NH: 2, NKV: 2, HS: 8 }, causal: false, masked: false, tiling: { keySplits: 5, BQ: 4, BK: 8 } },
];

describe('attention kernel', () => {
  for (const c of cases) {
    const { B, T, S, NH, NKV, HS } = c.d;
    const name = `B=${B} T=${T} S=${S} NH/NKV=${NH}/${NKV} HS=${HS} ${c.causal ? 'causal' : 'full'}${c.masked ? ' masked' : ''}${c.tiling ? ` tiling=${JSON.stringify(c.tiling)}` : ''}`;
    it(`matches the CPU twin: ${name}`, async () => {
      const seed = B * 1000 + T * 100 + S;
      const q = randArray(B * T * NH * HS, seed);
      const k = randArray(B * S * NKV * HS, seed + 1);
      const v = randArray(B * S * NKV * HS, seed + 2);
      let mask: Float32Array | null = null;
      if (c.masked) {
        mask = new Float32Array(B * S).fill(1);
        // Batch 0: left padding longer than query 0's causal window when T < S, so with
        // causal masking at least one row sees no key at all (must give zeros, not NaN).
        const pad = Math.min(S - 1, S - T + 2);
        for (let j = 0; j < pad; j++) mask[j] = 0;
        if (B > 1) mask[S + (S >> 1)] = 0; // batch 1: a hole
      }
      const scale = 1 / Math.sqrt(HS);
      const ref = new Float32Array(B * T * NH * HS);
      attentionForward(ref, null, q, k, v, mask, c.d, c.causal, scale);
      const keyMask = mask ? tf.tensor2d(mask, [B, S]) : undefined;
      const before = tf.memory().numTensors;
      const out = gpuAttention(
        tf.tensor3d(q, [B, T, NH * HS]),
        tf.tensor3d(k, [B, S, NKV * HS]),
        tf.tensor3d(v, [B, S, NKV * HS]),
        { causal: c.causal, nHeads: NH, nKvHeads: NKV, headDim: HS, scale, keyMask },
        c.tiling,
      );
      // Only the output is new: the split path's partial tensor is freed.
      expect(tf.memory().numTensors).toBe(before + 4);
      expect(out.shape).toEqual([B, T, NH * HS]);
      const got = (await out.data()) as Float32Array;
      expect(got.every(Number.isFinite)).toBe(true);
      expectClose(got, ref, 2e-5, 1e-4);
      tf.dispose([out, keyMask]);
    });
  }
});

describe('attention kernel input checks', () => {
  it('names the problem when shapes or dtypes do not fit', () => {
    const q = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const kv = tf.zeros([1, 3, 8]) as tf.Tensor3D;
    const opts = { causal: true, nHeads: 2, nKvHeads: 2, headDim: 4, scale: 0.5 };
    expect(() => gpuAttention(q, kv, kv, { ...opts, nKvHeads: 3 })).toThrow(/not a multiple of nKvHeads/);
    expect(() => gpuAttention(q, kv, kv, { ...opts, headDim: 8 })).toThrow(/q has 8 channels/);
    const badMask = tf.zeros([1, 3], 'int32') as tf.Tensor2D;
    expect(() => gpuAttention(q, kv, kv, { ...opts, keyMask: badMask })).toThrow(/keyMask is int32/);
    expect(() => gpuAttention(kv, q, q, opts)).toThrow(/causal attention needs S >= T/);
    tf.dispose([q, kv, badMask]);
  });
});

describe('attention kernel memory', () => {
  it('allocates no (T, S) score matrix: peak live bytes grow by about the output only', async () => {
    const [B, T, S, NH, HS] = [1, 130, 130, 2, 8];
    const q = tf.tensor3d(randArray(B * T * NH * HS, 71), [B, T, NH * HS]);
    const k = tf.tensor3d(randArray(B * S * NH * HS, 72), [B, S, NH * HS]);
    const v = tf.tensor3d(randArray(B * S * NH * HS, 73), [B, S, NH * HS]);
    const outBytes = 4 * B * T * NH * HS; // 8 KiB
    const scoreBytes = 4 * B * NH * T * S; // 132 KiB: what an unfused softmax would hold
    for (const keySplits of [1, 4]) {
      resetPeakBytes();
      const base = peakBytes();
      const out = gpuAttention(q, k, v, { causal: true, nHeads: NH, nKvHeads: NH, headDim: HS, scale: 0.3 }, { keySplits });
      await out.data();
      const growth = peakBytes() - base;
      // The split path also holds its partials: (HS + 2) floats per row per split, rows
      // padded to whole blocks of at most 16; independent of S either way.
      const partialBytes = keySplits === 1 ? 0 : 4 * keySplits * B * NH * (T + 15) * (HS + 2);
      expect(growth, `keySplits ${keySplits}`).toBeLessThanOrEqual(outBytes + partialBytes);
      if (keySplits === 1) expect(growth).toBeLessThan(scoreBytes / 4);
      out.dispose();
    }
    tf.dispose([q, k, v]);
  });
});
