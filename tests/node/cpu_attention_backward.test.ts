// The CPU attention backward twin against central finite differences of the CPU forward twin.
// Loss L = sum(out * W) with a fixed random W, so dL/dout = W; every element of q, k and v is
// nudged by +-eps and (L+ - L-) / 2eps must match the analytic gradient. Covers GQA, causal
// with a kv offset (T < S), key masks (including a row that sees no key), batch > 1.
import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, type AttentionDims } from '../../src/engine/cpu/attention';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng));
}

interface Case {
  d: AttentionDims;
  causal: boolean;
  masked: boolean;
}

const cases: Case[] = [
  { d: { B: 1, T: 1, S: 3, NH: 2, NKV: 1, HS: 4 }, causal: true, masked: false },
  { d: { B: 2, T: 3, S: 3, NH: 3, NKV: 3, HS: 5 }, causal: true, masked: false },
  { d: { B: 1, T: 5, S: 7, NH: 2, NKV: 1, HS: 8 }, causal: true, masked: true },
  { d: { B: 2, T: 3, S: 7, NH: 3, NKV: 3, HS: 4 }, causal: false, masked: true },
  { d: { B: 2, T: 5, S: 7, NH: 2, NKV: 1, HS: 6 }, causal: false, masked: false },
  { d: { B: 1, T: 3, S: 7, NH: 3, NKV: 3, HS: 7 }, causal: true, masked: true },
];

/** Mask: batch 0 pads its first S - T + 1 keys, so with causal masking query 0 sees nothing. */
function makeMask(B: number, T: number, S: number): Float32Array {
  const mask = new Float32Array(B * S).fill(1);
  for (let j = 0; j < Math.min(S - 1, S - T + 1); j++) mask[j] = 0;
  if (B > 1) mask[S + (S >> 1)] = 0; // batch 1: a hole
  return mask;
}

describe('CPU attention backward twin', () => {
  for (const c of cases) {
    const { B, T, S, NH, NKV, HS } = c.d;
    const name = `B=${B} T=${T} S=${S} NH/NKV=${NH}/${NKV} HS=${HS} ${c.causal ? 'causal' : 'full'}${c.masked ? ' masked' : ''}`;
    it(`matches finite differences: ${name}`, () => {
      const seed = B * 1000 + T * 100 + S * 10 + HS;
      const q = randArray(B * T * NH * HS, seed);
      const k = randArray(B * S * NKV * HS, seed + 1);
      const v = randArray(B * S * NKV * HS, seed + 2);
      const w = randArray(B * T * NH * HS, seed + 3); // dL/dout
      const mask = c.masked ? makeMask(B, T, S) : null;
      const scale = 1 / Math.sqrt(HS);

      const out = new Float32Array(B * T * NH * HS);
      const lse = new Float32Array(B * NH * T);
      attentionForward(out, lse, q, k, v, mask, c.d, c.causal, scale, 2);
      const dq = new Float32Array(q.length);
      const dk = new Float32Array(k.length);
      const dv = new Float32Array(v.length);
      attentionBackward(dq, dk, dv, w, out, lse, q, k, v, mask, c.d, c.causal, scale);

      const tmp = new Float32Array(out.length);
      const loss = (): number => {
        attentionForward(tmp, null, q, k, v, mask, c.d, c.causal, scale, 2);
        let sum = 0;
        for (let i = 0; i < tmp.length; i++) sum += tmp[i] * w[i];
        return sum;
      };
      const eps = 1e-2;
      const numeric = (x: Float32Array): Float32Array => {
        const g = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const x0 = x[i];
          x[i] = x0 + eps;
          const lp = loss();
          x[i] = x0 - eps;
          const lm = loss();
          x[i] = x0;
          g[i] = (lp - lm) / (2 * eps);
        }
        return g;
      };
      // eps^2 truncation (~1e-4 relative) and float32 rounding of `out` bound the agreement.
      expectClose(dq, numeric(q), 2e-3, 1e-2, 'dq');
      expectClose(dk, numeric(k), 2e-3, 1e-2, 'dk');
      expectClose(dv, numeric(v), 2e-3, 1e-2, 'dv');
      // The gradient is not trivially zero: the check could fail.
      expect(dq.some((x) => Math.abs(x) > 1e-2)).toBe(true);
      expect(dk.some((x) => Math.abs(x) > 1e-2)).toBe(true);

      if (mask) {
        // Masked keys receive nothing; a row that sees no key gets dq = 0 and no NaN.
        for (let b = 0; b < B; b++) {
          for (let j = 0; j < S; j++) {
            if (mask[b * S + j] >= 0.5) continue;
            for (let e = 0; e < NKV * HS; e++) {
              expect(dk[(b * S + j) * NKV * HS + e]).toBe(0);
              expect(dv[(b * S + j) * NKV * HS + e]).toBe(0);
            }
          }
        }
        if (c.causal) {
          expect(lse[0]).toBe(-Infinity); // b 0, h 0, t 0 sees no key
          for (let e = 0; e < HS; e++) expect(dq[e]).toBe(0);
        }
      }
      for (const g of [dq, dk, dv]) expect(g.every(Number.isFinite)).toBe(true);
    });
  }

  it('sums a shared kv head over its query heads (GQA)', () => {
    // NH = 2 heads on one kv head gives the same dk/dv as NKV = 2 with k/v duplicated, summed.
    const T = 3;
    const S = 5;
    const HS = 4;
    const gqa: AttentionDims = { B: 1, T, S, NH: 2, NKV: 1, HS };
    const mha: AttentionDims = { ...gqa, NKV: 2 };
    const q = randArray(T * 2 * HS, 5);
    const k = randArray(S * HS, 6);
    const v = randArray(S * HS, 7);
    const w = randArray(T * 2 * HS, 8);
    const dup = (x: Float32Array) => {
      const y = new Float32Array(S * 2 * HS);
      for (let j = 0; j < S; j++) for (let r = 0; r < 2; r++) y.set(x.subarray(j * HS, (j + 1) * HS), (j * 2 + r) * HS);
      return y;
    };
    const run = (d: AttentionDims, kk: Float32Array, vv: Float32Array) => {
      const out = new Float32Array(T * 2 * HS);
      const lse = new Float32Array(2 * T);
      attentionForward(out, lse, q, kk, vv, null, d, true, 0.5);
      const dq = new Float32Array(q.length);
      const dk = new Float32Array(kk.length);
      const dv = new Float32Array(vv.length);
      attentionBackward(dq, dk, dv, w, out, lse, q, kk, vv, null, d, true, 0.5);
      return { dq, dk, dv };
    };
    const a = run(gqa, k, v);
    const m = run(mha, dup(k), dup(v));
    expectClose(a.dq, m.dq, 1e-6, 1e-6, 'dq');
    const fold = (x: Float32Array) => {
      const y = new Float32Array(S * HS);
      for (let j = 0; j < S; j++) for (let r = 0; r < 2; r++) for (let d = 0; d < HS; d++) y[j * HS + d] += x[(j * 2 + r) * HS + d];
      return y;
    };
    expectClose(a.dk, fold(m.dk), 1e-6, 1e-6, 'dk');
    expectClose(a.dv, fold(m.dv), 1e-6, 1e-6, 'dv');
  });
});
