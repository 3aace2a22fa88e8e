// CPU twins of the linear and embedding kernels: hand-checked values, and quantised weights
// giving the f32 result of their dequantised matrix.
import { describe, expect, it } from 'vitest';
import { linearForward, hostWeightF32 } from '../../src/engine/cpu/linear';
import { embeddingForward } from '../../src/engine/cpu/embedding';
import { quantizeQ4, quantizeQ8 } from '../../src/engine/load/quantize';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

describe('linearForward', () => {
  it('computes x W^T + b by hand', () => {
    // x (2, 3), W (2, 3) HF layout (outF, inF), b (2)
    const x = Float32Array.from([1, 2, 3, -1, 0, 1]);
    const w = Float32Array.from([1, 0, -1, 2, 1, 0.5]);
    const out = new Float32Array(4);
    linearForward(out, x, { kind: 'f32', inF: 3, outF: 2, w, bias: Float32Array.from([10, 20]) }, 2);
    // row 0: [1-3, 2+2+1.5] + b = [8, 25.5]; row 1: [-1-1, -2+0.5] + b = [8, 18.5]
    expect(Array.from(out)).toEqual([8, 25.5, 8, 18.5]);
  });

  it('q8 and q4 weights act as their dequantised f32 matrix, close to the original', () => {
    const rng = mulberry32(3);
    const [N, inF, outF] = [3, 27, 5];
    const w = Float32Array.from({ length: outF * inF }, () => randn(rng));
    const x = Float32Array.from({ length: N * inF }, () => randn(rng));
    const ref = new Float32Array(N * outF);
    linearForward(ref, x, { kind: 'f32', inF, outF, w }, N);
    const q8 = quantizeQ8(w, outF, inF);
    const q4 = quantizeQ4(w, outF, inF, 32);
    const h8 = { kind: 'q8' as const, inF, outF, ...q8 };
    const h4 = { kind: 'q4' as const, inF, outF, groupSize: 32, ...q4 };
    for (const h of [h8, h4]) {
      const got = new Float32Array(N * outF);
      linearForward(got, x, h, N);
      const wq = hostWeightF32(h);
      const viaF32 = new Float32Array(N * outF);
      linearForward(viaF32, x, { kind: 'f32', inF, outF, w: wq }, N);
      expectClose(got, viaF32, 1e-5, 1e-5, `${h.kind} vs dequantised`);
      // Rounding moves each weight by at most half a step: |error| <= sum_k |x_k| * max step / 2.
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < outF; o++) {
          let bound = 0;
          for (let k = 0; k < inF; k++) {
            const step = h.kind === 'q8' ? h.scale[o] : h.scale[o * Math.ceil(inF / 32) + Math.floor(k / 32)];
            bound += (Math.abs(x[n * inF + k]) * step) / 2;
          }
          expect(Math.abs(got[n * outF + o] - ref[n * outF + o])).toBeLessThanOrEqual(bound * 1.0001 + 1e-6);
        }
      }
    }
  });

  it('rejects mismatched buffers, naming the sizes', () => {
    const w = new Float32Array(6);
    expect(() => linearForward(new Float32Array(2), new Float32Array(4), { kind: 'f32', inF: 3, outF: 2, w }, 1)).toThrow(/x has 4 values/);
  });
});

describe('embeddingForward', () => {
  it('gathers rows, decoding q8', () => {
    const table = Float32Array.from([0, 1, 2, 3, 4, 5, -6, 7, 8]); // (V=3, C=3)
    const out = new Float32Array(6);
    embeddingForward(out, Int32Array.from([2, 0]), { kind: 'f32', inF: 3, outF: 3, w: table });
    expect(Array.from(out)).toEqual([-6, 7, 8, 0, 1, 2]);
    const q8 = quantizeQ8(table, 3, 3);
    embeddingForward(out, Int32Array.from([2, 0]), { kind: 'q8', inF: 3, outF: 3, ...q8 });
    expectClose(out, [-6, 7, 8, 0, 1, 2], 0.05, 0.01, 'q8 rows');
  });

  it('names an id outside the table', () => {
    const w = new Float32Array(6);
    expect(() => embeddingForward(new Float32Array(2), Int32Array.from([3]), { kind: 'f32', inF: 2, outF: 3, w })).toThrow(/id 3 at position 0/);
  });
});
