// WGSL kernels for the norms, RoPE, activations and pixel shuffle against their CPU twins,
// on shapes that include sizes divisible by neither 4 nor the workgroup size.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend } from '../../src/engine/backend';
import * as gpuLn from '../../src/engine/kernels/layer_norm';
import * as gpuRms from '../../src/engine/kernels/rms_norm';
import * as gpuRope from '../../src/engine/kernels/rope';
import * as gpuAct from '../../src/engine/kernels/activations';
import * as gpuPs from '../../src/engine/kernels/pixel_shuffle';
import { layerNormForward } from '../../src/engine/cpu/layer_norm';
import { rmsNormForward } from '../../src/engine/cpu/rms_norm';
import { ropeForward } from '../../src/engine/cpu/rope';
import { geluTanhForward, siluMulForward } from '../../src/engine/cpu/activations';
import { pixelShuffleForward } from '../../src/engine/cpu/pixel_shuffle';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng) * scale + shift);
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

beforeAll(async () => {
  await initEngineBackend();
});

describe('layerNorm kernel', () => {
  for (const [N, C] of [[1, 5], [3, 33], [4, 100], [2, 300]] as const) {
    it(`matches the CPU twin for N=${N}, C=${C}`, async () => {
      // A large mean on purpose: one-pass variance formulas fail it.
      const x = randArray(N * C, N * 1000 + C, 2, 300);
      const w = randArray(C, 1);
      const b = randArray(C, 2);
      const ref = new Float32Array(N * C);
      layerNormForward(ref, null, null, x, w, b, N, C, 1e-6);
      const out = gpuLn.layerNormForward(tf.tensor2d(x, [N, C]), tf.tensor1d(w), tf.tensor1d(b), 1e-6);
      expect(out.shape).toEqual([N, C]);
      expectClose(await read(out), ref, 1e-4, 1e-4);
    });
  }
});

describe('rmsNorm kernel', () => {
  for (const [N, C] of [[1, 5], [3, 33], [5, 100], [2, 257]] as const) {
    it(`matches the CPU twin for N=${N}, C=${C}`, async () => {
      const x = randArray(N * C, N * 100 + C, 3);
      const w = randArray(C, 3);
      const ref = new Float32Array(N * C);
      rmsNormForward(ref, null, x, w, N, C, 1e-5);
      const out = gpuRms.rmsNormForward(tf.tensor2d(x, [N, C]), tf.tensor1d(w), 1e-5);
      expectClose(await read(out), ref, 1e-5, 1e-4);
    });
  }
});

describe('rope kernel', () => {
  const cases = [
    { B: 1, T: 1, NH: 3, HS: 8, theta: 10000 },
    { B: 2, T: 7, NH: 2, HS: 16, theta: 100000 },
    { B: 1, T: 19, NH: 1, HS: 64, theta: 10000 },
  ];
  for (const c of cases) {
    it(`matches the CPU twin for B=${c.B}, T=${c.T}, NH=${c.NH}, HS=${c.HS}`, async () => {
      const { B, T, NH, HS, theta } = c;
      const x = randArray(B * T * NH * HS, T * 7 + HS);
      // Positions up to ~3000 exercise the range reduction before cos/sin.
      const rng = mulberry32(T + 5);
      const pos = Int32Array.from({ length: B * T }, () => Math.floor(rng() * 3000));
      pos[0] = 0;
      const ref = new Float32Array(x.length);
      ropeForward(ref, x, pos, B, T, NH, HS, theta);
      const out = gpuRope.ropeForward(tf.tensor3d(x, [B, T, NH * HS]), tf.tensor2d(pos, [B, T], 'int32'), NH, HS, theta);
      expectClose(await read(out), ref, 2e-5, 2e-5);
    });
  }
});

describe('activation kernels', () => {
  for (const [N, I] of [[1, 5], [3, 33], [2, 100]] as const) {
    it(`geluTanh and siluMul match the CPU twins for (${N}, ${I})`, async () => {
      const x = randArray(N * I, I, 4); // reaches well into both tails
      x[0] = 40;
      x[1] = -40;
      const up = randArray(N * I, I + 1);
      const refGelu = new Float32Array(N * I);
      geluTanhForward(refGelu, x, N * I);
      const refSilu = new Float32Array(N * I);
      siluMulForward(refSilu, x, up, N * I);
      const xt = tf.tensor2d(x, [N, I]);
      expectClose(await read(gpuAct.geluTanhForward(xt)), refGelu, 1e-5, 1e-4, 'geluTanh');
      expectClose(await read(gpuAct.siluMulForward(xt, tf.tensor2d(up, [N, I]))), refSilu, 1e-5, 1e-4, 'siluMul');
    });
  }
});

describe('pixelShuffle kernel', () => {
  for (const c of [
    { B: 1, P: 16, C: 3, s: 2 },
    { B: 2, P: 16, C: 4, s: 2 },
    { B: 1, P: 64, C: 5, s: 4 },
    { B: 2, P: 36, C: 8, s: 3 },
  ]) {
    it(`matches the CPU twin for B=${c.B}, P=${c.P}, C=${c.C}, s=${c.s}`, async () => {
      const { B, P, C, s } = c;
      const x = randArray(B * P * C, P + C);
      const ref = new Float32Array(x.length);
      pixelShuffleForward(ref, x, B, P, C, s);
      const out = gpuPs.pixelShuffleForward(tf.tensor3d(x, [B, P, C]), s);
      expect(out.shape).toEqual([B, P / (s * s), C * s * s]);
      expectClose(await read(out), ref, 0, 0);
    });
  }
});
