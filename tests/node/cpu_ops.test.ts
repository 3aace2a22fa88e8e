// CPU twins of the non-matmul ops against hand-computed values and independently derived
// references (a full-matrix softmax for attention, complex rotation for RoPE, explicit index
// math for pixel shuffle). The GPU kernels are in turn tested against these twins.
import { describe, expect, it } from 'vitest';
import { layerNormForward } from '../../src/engine/cpu/layer_norm';
import { rmsNormForward } from '../../src/engine/cpu/rms_norm';
import { ropeForward, ropeInvFreq } from '../../src/engine/cpu/rope';
import { attentionForward, type AttentionDims } from '../../src/engine/cpu/attention';
import { geluTanhForward, siluMulForward } from '../../src/engine/cpu/activations';
import { pixelShuffleForward } from '../../src/engine/cpu/pixel_shuffle';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng) * scale);
}

describe('layerNormForward', () => {
  it('matches a hand-computed row', () => {
    // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25
    const out = new Float32Array(4);
    const mean = new Float32Array(1);
    const rstd = new Float32Array(1);
    const eps = 1e-5;
    layerNormForward(out, mean, rstd, Float32Array.of(1, 2, 3, 4), Float32Array.of(1, 2, 1, 1), Float32Array.of(0, 0, 0.5, 0), 1, 4, eps);
    const s = 1 / Math.sqrt(1.25 + eps);
    expect(mean[0]).toBeCloseTo(2.5, 6);
    expect(rstd[0]).toBeCloseTo(s, 5);
    expectClose(out, [-1.5 * s, -0.5 * s * 2, 0.5 * s + 0.5, 1.5 * s], 1e-6, 1e-6);
  });

  it('matches the E[x^2] - E[x]^2 formula on random rows of odd width', () => {
    const N = 3;
    const C = 33;
    const x = randArray(N * C, 1);
    const w = randArray(C, 2);
    const bias = randArray(C, 3);
    const out = new Float32Array(N * C);
    layerNormForward(out, null, null, x, w, bias, N, C, 1e-6);
    const ref = new Float64Array(N * C);
    for (let n = 0; n < N; n++) {
      let s1 = 0;
      let s2 = 0;
      for (let c = 0; c < C; c++) {
        s1 += x[n * C + c];
        s2 += x[n * C + c] ** 2;
      }
      const m = s1 / C;
      const varc = s2 / C - m * m;
      for (let c = 0; c < C; c++) ref[n * C + c] = ((x[n * C + c] - m) / Math.sqrt(varc + 1e-6)) * w[c] + bias[c];
    }
    expectClose(out, ref, 1e-5, 1e-5);
  });
});

describe('rmsNormForward', () => {
  it('matches a hand-computed row', () => {
    // x = [3, 4]: mean(x^2) = 12.5
    const out = new Float32Array(2);
    const rstd = new Float32Array(1);
    rmsNormForward(out, rstd, Float32Array.of(3, 4), Float32Array.of(2, 0.5), 1, 2, 0);
    const r = Math.sqrt(12.5);
    expect(rstd[0]).toBeCloseTo(1 / r, 6);
    expectClose(out, [(3 / r) * 2, (4 / r) * 0.5], 1e-6, 1e-6);
  });

  it('gives unit root-mean-square rows with unit weight', () => {
    const N = 4;
    const C = 100;
    const out = new Float32Array(N * C);
    rmsNormForward(out, null, randArray(N * C, 7, 3), new Float32Array(C).fill(1), N, C, 1e-6);
    for (let n = 0; n < N; n++) {
      let sq = 0;
      for (let c = 0; c < C; c++) sq += out[n * C + c] ** 2;
      expect(Math.sqrt(sq / C)).toBeCloseTo(1, 5);
    }
  });
});

describe('ropeForward', () => {
  it('computes inv_freq = theta^(-2i/HS)', () => {
    const inv = ropeInvFreq(8, 10000);
    expectClose(inv, [1, 0.1, 0.01, 0.001], 0, 1e-6);
  });

  it('rotates each (i, i + HS/2) pair as the complex number x_i + j x_{i+HS/2} times e^{j pos w_i}', () => {
    const B = 2;
    const T = 3;
    const NH = 2;
    const HS = 8;
    const theta = 100;
    const x = randArray(B * T * NH * HS, 11);
    const pos = Int32Array.from([0, 1, 5, 7, 2, 40]);
    const out = new Float32Array(x.length);
    ropeForward(out, x, pos, B, T, NH, HS, theta);
    const ref = new Float64Array(x.length);
    const half = HS / 2;
    for (let bt = 0; bt < B * T; bt++)
      for (let h = 0; h < NH; h++)
        for (let i = 0; i < half; i++) {
          const base = (bt * NH + h) * HS;
          const w = pos[bt] * Math.pow(theta, (-2 * i) / HS);
          // (re + j im) * (cos w + j sin w)
          const re = x[base + i];
          const im = x[base + i + half];
          ref[base + i] = re * Math.cos(w) - im * Math.sin(w);
          ref[base + i + half] = re * Math.sin(w) + im * Math.cos(w);
        }
    expectClose(out, ref, 1e-5, 1e-5);
    // position 0 is the identity
    expectClose(out.subarray(0, NH * HS), x.subarray(0, NH * HS), 0, 0);
  });

  it('makes q.k depend only on the position difference', () => {
    const HS = 16;
    const q = randArray(HS, 21);
    const k = randArray(HS, 22);
    const dotAt = (pq: number, pk: number): number => {
      const rq = new Float32Array(HS);
      const rk = new Float32Array(HS);
      ropeForward(rq, q, Int32Array.of(pq), 1, 1, 1, HS, 10000);
      ropeForward(rk, k, Int32Array.of(pk), 1, 1, 1, HS, 10000);
      return rq.reduce((s, a, i) => s + a * rk[i], 0);
    };
    expect(dotAt(7, 3)).toBeCloseTo(dotAt(14, 10), 4);
    expect(dotAt(7, 3)).not.toBeCloseTo(dotAt(7, 4), 2);
  });
});

/** Full (T, S) score matrix, masked with -Infinity, softmax per row: the textbook definition. */
function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array | null,
  d: AttentionDims,
  causal: boolean,
  scale: number,
): Float64Array {
  const { B, T, S, NH, NKV, HS } = d;
  const out = new Float64Array(B * T * NH * HS);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const g = Math.floor((h * NKV) / NH);
      const scores: number[][] = []; // (T, S)
      for (let t = 0; t < T; t++) {
        scores.push([]);
        for (let j = 0; j < S; j++) {
          let dot = 0;
          for (let e = 0; e < HS; e++) dot += q[((b * T + t) * NH + h) * HS + e] * k[((b * S + j) * NKV + g) * HS + e];
          const hidden = (causal && j > S - T + t) || (mask !== null && mask[b * S + j] === 0);
          scores[t].push(hidden ? -Infinity : dot * scale);
        }
      }
      for (let t = 0; t < T; t++) {
        const mx = Math.max(...scores[t]);
        if (mx === -Infinity) continue; // all hidden: output stays 0
        const p = scores[t].map((s) => Math.exp(s - mx));
        const z = p.reduce((a, c) => a + c, 0);
        for (let e = 0; e < HS; e++) {
          let s = 0;
          for (let j = 0; j < S; j++) s += (p[j] / z) * v[((b * S + j) * NKV + g) * HS + e];
          out[((b * T + t) * NH + h) * HS + e] = s;
        }
      }
    }
  return out;
}

describe('attentionForward', () => {
  const cases: { name: string; d: AttentionDims; causal: boolean; masked: boolean }[] = [
    { name: 'full, MHA', d: { B: 1, T: 5, S: 5, NH: 2, NKV: 2, HS: 8 }, causal: false, masked: false },
    { name: 'causal prefill, GQA 3/1', d: { B: 2, T: 7, S: 7, NH: 3, NKV: 1, HS: 8 }, causal: true, masked: false },
    { name: 'causal with kv offset, GQA 4/2, key mask', d: { B: 2, T: 3, S: 40, NH: 4, NKV: 2, HS: 16 }, causal: true, masked: true },
    { name: 'decode T=1, key mask', d: { B: 2, T: 1, S: 70, NH: 4, NKV: 2, HS: 8 }, causal: true, masked: true },
    { name: 'full with key mask', d: { B: 2, T: 6, S: 9, NH: 2, NKV: 1, HS: 8 }, causal: false, masked: true },
  ];
  for (const c of cases) {
    it(`matches the full-matrix softmax: ${c.name}`, () => {
      const { B, T, S, NH, NKV, HS } = c.d;
      const q = randArray(B * T * NH * HS, 31);
      const k = randArray(B * S * NKV * HS, 32);
      const v = randArray(B * S * NKV * HS, 33);
      let mask: Float32Array | null = null;
      if (c.masked) {
        mask = new Float32Array(B * S).fill(1);
        for (let j = 0; j < Math.min(3, S - 1); j++) mask[j] = 0; // batch 0: left padding
        mask[S + (S >> 1)] = 0; // batch 1: a hole in the middle
      }
      const scale = 1 / Math.sqrt(HS);
      const ref = naiveAttention(q, k, v, mask, c.d, c.causal, scale);
      for (const blockKeys of [1, 3, 32]) {
        const out = new Float32Array(B * T * NH * HS);
        attentionForward(out, null, q, k, v, mask, c.d, c.causal, scale, blockKeys);
        expectClose(out, ref, 1e-5, 1e-5, `blockKeys ${blockKeys}`);
      }
    });
  }

  it('outputs zeros, not NaN, for a row that sees no key, and -Infinity as its lse', () => {
    const d: AttentionDims = { B: 1, T: 2, S: 4, NH: 1, NKV: 1, HS: 4 };
    const q = randArray(8, 41);
    const k = randArray(16, 42);
    const v = randArray(16, 43);
    // Query 0 sits at position 2 and sees keys 0..2, all padding; query 1 also sees key 3.
    const mask = Float32Array.of(0, 0, 0, 1);
    const out = new Float32Array(8);
    const lse = new Float32Array(2);
    attentionForward(out, lse, q, k, v, mask, d, true, 0.5);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(lse[0]).toBe(-Infinity);
    // Query 1 sees exactly key 3: its output is v[3] and lse is its scaled score.
    expectClose(out.subarray(4), v.subarray(12), 1e-6, 1e-6);
    const s = 0.5 * q.subarray(4).reduce((a, x, i) => a + x * k[12 + i], 0);
    expect(lse[1]).toBeCloseTo(s, 5);
  });
});

describe('activations', () => {
  it('geluTanh matches x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3), and known values', () => {
    const x = Float32Array.from([-20, -3, -1, -0.5, 0, 0.5, 1, 3, 20, ...randArray(37, 51)]);
    const out = new Float32Array(x.length);
    geluTanhForward(out, x, x.length);
    const ref = Array.from(x, (a) => {
      const u = Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3);
      return a / (1 + Math.exp(-2 * u));
    });
    expectClose(out, ref, 1e-6, 1e-5);
    expect(out[6]).toBeCloseTo(0.841192, 5); // torch gelu(1, approximate='tanh')
    expect(out[2]).toBeCloseTo(-0.158808, 5);
  });

  it('siluMul is silu(gate) * up', () => {
    const out = new Float32Array(3);
    siluMulForward(out, Float32Array.of(0, 1, -2), Float32Array.of(5, 2, 3), 3);
    expectClose(out, [0, 2 / (1 + Math.exp(-1)), 3 * (-2 / (1 + Math.exp(2)))], 1e-6, 1e-6);
  });
});

describe('pixelShuffleForward', () => {
  it('folds each 2x2 block of a 4x4 grid into one token, row-major within the block', () => {
    // Patch p of batch b holds channels [100b + 10p, 100b + 10p + 1] (C = 2).
    const B = 2;
    const P = 16;
    const C = 2;
    const x = new Float32Array(B * P * C);
    for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) x[(b * P + p) * C + c] = 100 * b + 10 * p + c;
    const out = new Float32Array(x.length); // (2, 4, 8)
    pixelShuffleForward(out, x, B, P, C, 2);
    // Hand-derived: token (h2, w2) = patches (2h2, 2w2), (2h2, 2w2+1), (2h2+1, 2w2), (2h2+1, 2w2+1).
    const tokens = [
      [0, 1, 4, 5],
      [2, 3, 6, 7],
      [8, 9, 12, 13],
      [10, 11, 14, 15],
    ];
    const ref: number[] = [];
    for (let b = 0; b < B; b++) for (const patches of tokens) for (const p of patches) ref.push(100 * b + 10 * p, 100 * b + 10 * p + 1);
    expect(Array.from(out)).toEqual(ref);
  });

  it('matches explicit index math for P=64, s=4', () => {
    const B = 1;
    const P = 64;
    const C = 3;
    const s = 4;
    const side = 8;
    const x = randArray(B * P * C, 61);
    const out = new Float32Array(x.length);
    pixelShuffleForward(out, x, B, P, C, s);
    const ref = new Float32Array(x.length);
    const outSide = side / s;
    for (let h2 = 0; h2 < outSide; h2++)
      for (let w2 = 0; w2 < outSide; w2++)
        for (let dh = 0; dh < s; dh++)
          for (let dw = 0; dw < s; dw++)
            for (let c = 0; c < C; c++) {
              const token = h2 * outSide + w2;
              const k = (dh * s + dw) * C + c;
              const patch = (h2 * s + dh) * side + (w2 * s + dw);
              ref[token * C * s * s + k] = x[patch * C + c];
            }
    expect(Array.from(out)).toEqual(Array.from(ref));
  });

  it('rejects a non-square patch count', () => {
    expect(() => pixelShuffleForward(new Float32Array(12), new Float32Array(12), 1, 12, 1, 2)).toThrow(/square/);
  });
});
