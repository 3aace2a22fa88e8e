// CPU backward twins against central finite differences of their CPU forward twins. For a
// random R, loss(inputs) = sum(forward(inputs) * R) (summed in f64); its gradient with respect
// to every input element must equal what the backward twin returns for dOut = R. Shapes are
// small and odd (not multiples of 4), so every element is perturbed.
import { describe, expect, it } from 'vitest';
import { linearBackward, linearForward, type HostLinearWeight } from '../../src/engine/cpu/linear';
import { embeddingBackward, embeddingForward } from '../../src/engine/cpu/embedding';
import { layerNormBackward, layerNormForward } from '../../src/engine/cpu/layer_norm';
import { rmsNormBackward, rmsNormForward } from '../../src/engine/cpu/rms_norm';
import { ropeBackward, ropeForward } from '../../src/engine/cpu/rope';
import { geluTanhBackward, geluTanhForward, siluMulBackward, siluMulForward } from '../../src/engine/cpu/activations';
import { pixelShuffleBackward, pixelShuffleForward } from '../../src/engine/cpu/pixel_shuffle';
import { quantizeQ8 } from '../../src/engine/load/quantize';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng) * scale);
}

/**
 * Central differences of loss = sum(forward() * R) with respect to every element of `x`
 * (perturbed in place and restored). f32 forward, f64 sum: step h balances f32 rounding
 * (~1e-7 |out| / h) against truncation (~h^2).
 */
function numericGrad(x: Float32Array, outLen: number, forward: (out: Float32Array) => void, R: Float32Array, h = 1e-2): Float64Array {
  const out = new Float32Array(outLen);
  const loss = () => {
    forward(out);
    let s = 0;
    for (let i = 0; i < outLen; i++) s += out[i] * R[i];
    return s;
  };
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

describe('linearBackward', () => {
  const N = 3;
  const inF = 5;
  const outF = 7;
  it('dInp, dWeight and dBias of an f32 weight match finite differences', () => {
    const x = randArray(N * inF, 1);
    const w = randArray(outF * inF, 2);
    const bias = randArray(outF, 3);
    const weight: HostLinearWeight = { kind: 'f32', inF, outF, w, bias };
    const R = randArray(N * outF, 4);
    const fwd = (out: Float32Array) => linearForward(out, x, weight, N);
    const dInp = new Float32Array(N * inF);
    const dWeight = new Float32Array(outF * inF);
    const dBias = new Float32Array(outF);
    linearBackward(dInp, dWeight, dBias, R, x, weight, N);
    expectClose(dInp, numericGrad(x, N * outF, fwd, R), 2e-3, 2e-3, 'dInp');
    expectClose(dWeight, numericGrad(w, N * outF, fwd, R), 2e-3, 2e-3, 'dWeight');
    expectClose(dBias, numericGrad(bias, N * outF, fwd, R), 2e-3, 2e-3, 'dBias');
  });

  it('dInp through a q8 weight matches finite differences (the weight decoded as in forward)', () => {
    const x = randArray(N * inF, 5);
    const { q, scale } = quantizeQ8(randArray(outF * inF, 6), outF, inF);
    const weight: HostLinearWeight = { kind: 'q8', inF, outF, q, scale };
    const R = randArray(N * outF, 7);
    const dInp = new Float32Array(N * inF);
    linearBackward(dInp, null, null, R, null, weight, N);
    expectClose(dInp, numericGrad(x, N * outF, (out) => linearForward(out, x, weight, N), R), 2e-3, 2e-3, 'dInp q8');
  });

  it('refuses dWeight without the forward input', () => {
    const weight: HostLinearWeight = { kind: 'f32', inF: 2, outF: 1, w: new Float32Array(2) };
    expect(() => linearBackward(null, new Float32Array(2), null, new Float32Array(1), null, weight, 1)).toThrow(/needs the forward input/);
  });
});

describe('embeddingBackward', () => {
  it('adds rows of dOut into the rows their ids name, matching finite differences', () => {
    const V = 6;
    const C = 5;
    const ids = Int32Array.of(2, 0, 2, 5, 2);
    const N = ids.length;
    const table = randArray(V * C, 8);
    const R = randArray(N * C, 9);
    const dTable = new Float32Array(V * C);
    embeddingBackward(dTable, R, ids, V, C);
    const fd = numericGrad(table, N * C, (out) => embeddingForward(out, ids, { kind: 'f32', inF: C, outF: V, w: table }), R);
    expectClose(dTable, fd, 2e-3, 2e-3, 'dTable');
    // Rows no id names get exactly zero.
    expect(Array.from(dTable.subarray(1 * C, 2 * C))).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('layerNormBackward', () => {
  it('dInp, dWeight and dBias match finite differences', () => {
    const N = 3;
    const C = 7;
    const x = randArray(N * C, 10, 2);
    const w = randArray(C, 11);
    const b = randArray(C, 12);
    const R = randArray(N * C, 13);
    const mean = new Float32Array(N);
    const rstd = new Float32Array(N);
    layerNormForward(new Float32Array(N * C), mean, rstd, x, w, b, N, C, 1e-5);
    const dInp = new Float32Array(N * C);
    const dW = new Float32Array(C);
    const dB = new Float32Array(C);
    layerNormBackward(dInp, dW, dB, R, x, w, mean, rstd, N, C);
    const fwd = (out: Float32Array) => layerNormForward(out, null, null, x, w, b, N, C, 1e-5);
    expectClose(dInp, numericGrad(x, N * C, fwd, R, 3e-3), 3e-3, 3e-3, 'dInp');
    expectClose(dW, numericGrad(w, N * C, fwd, R), 2e-3, 2e-3, 'dWeight');
    expectClose(dB, numericGrad(b, N * C, fwd, R), 2e-3, 2e-3, 'dBias');
  });
});

describe('rmsNormBackward', () => {
  it('dInp and dWeight match finite differences', () => {
    const N = 2;
    const C = 9;
    const x = randArray(N * C, 14, 1.5);
    const w = randArray(C, 15);
    const R = randArray(N * C, 16);
    const rstd = new Float32Array(N);
    rmsNormForward(new Float32Array(N * C), rstd, x, w, N, C, 1e-6);
    const dInp = new Float32Array(N * C);
    const dW = new Float32Array(C);
    rmsNormBackward(dInp, dW, R, x, w, rstd, N, C);
    const fwd = (out: Float32Array) => rmsNormForward(out, null, x, w, N, C, 1e-6);
    expectClose(dInp, numericGrad(x, N * C, fwd, R, 3e-3), 3e-3, 3e-3, 'dInp');
    expectClose(dW, numericGrad(w, N * C, fwd, R), 2e-3, 2e-3, 'dWeight');
  });
});

describe('ropeBackward', () => {
  it('matches finite differences (dOut rotated by the negative angle)', () => {
    const [B, T, NH, HS] = [2, 3, 3, 6];
    const n = B * T * NH * HS;
    const x = randArray(n, 17);
    const R = randArray(n, 18);
    const positions = Int32Array.of(0, 1, 7, 3, 250, 1999);
    const dInp = new Float32Array(n);
    ropeBackward(dInp, R, positions, B, T, NH, HS, 10000);
    const fd = numericGrad(x, n, (out) => ropeForward(out, x, positions, B, T, NH, HS, 10000), R);
    expectClose(dInp, fd, 2e-3, 2e-3, 'dInp');
  });
});

describe('activation backwards', () => {
  it('geluTanhBackward matches finite differences, saturated tails included', () => {
    const N = 13;
    const x = randArray(N, 19, 3);
    x[0] = 12;
    x[1] = -12;
    const R = randArray(N, 20);
    const dInp = new Float32Array(N);
    geluTanhBackward(dInp, x, R, N);
    expectClose(dInp, numericGrad(x, N, (out) => geluTanhForward(out, x, N), R, 1e-3), 2e-3, 2e-3, 'dInp');
  });

  it('siluMulBackward dGate and dUp match finite differences', () => {
    const N = 11;
    const gate = randArray(N, 21, 3);
    const up = randArray(N, 22);
    const R = randArray(N, 23);
    const dGate = new Float32Array(N);
    const dUp = new Float32Array(N);
    siluMulBackward(dGate, dUp, R, gate, up, N);
    const fwd = (out: Float32Array) => siluMulForward(out, gate, up, N);
    expectClose(dGate, numericGrad(gate, N, fwd, R, 1e-3), 2e-3, 2e-3, 'dGate');
    expectClose(dUp, numericGrad(up, N, fwd, R, 1e-3), 2e-3, 2e-3, 'dUp');
  });
});

describe('pixelShuffleBackward', () => {
  for (const [B, P, C, s] of [[1, 16, 3, 2], [2, 36, 5, 3], [1, 36, 2, 2]] as const) {
    it(`is the inverse permutation for B=${B}, P=${P}, C=${C}, s=${s} (finite differences)`, () => {
      const n = B * P * C;
      const x = randArray(n, 24 + P);
      const R = randArray(n, 25 + P);
      const dInp = new Float32Array(n);
      pixelShuffleBackward(dInp, R, B, P, C, s);
      expectClose(dInp, numericGrad(x, n, (out) => pixelShuffleForward(out, x, B, P, C, s), R), 1e-3, 1e-3, 'dInp');
      // A permutation: forward then backward gives the input back exactly.
      const y = new Float32Array(n);
      pixelShuffleForward(y, x, B, P, C, s);
      const back = new Float32Array(n);
      pixelShuffleBackward(back, y, B, P, C, s);
      expect(Array.from(back)).toEqual(Array.from(x));
    });
  }
});
