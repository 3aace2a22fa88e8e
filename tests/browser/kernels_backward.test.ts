// Backward WGSL kernels against their CPU twins (src/engine/cpu/*.ts, themselves checked
// against finite differences in tests/node/cpu_backward.test.ts), on random shapes that are
// multiples of neither 4 nor any workgroup / tile size. Linear dX runs for f32, q8 and q4
// weights and several register-tile configs; reductions (dW, dBias, dgamma) run with forced
// split counts so both the one-pass and the two-pass paths are checked.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend } from '../../src/engine/backend';
import {
  columnSum,
  linearBackwardBias,
  linearBackwardInput,
  linearBackwardWeight,
  DEFAULT_DX,
  type DxConfig,
} from '../../src/engine/kernels/linear';
import { embeddingBackward } from '../../src/engine/kernels/embedding';
import { layerNormBackward, layerNormBackwardGamma } from '../../src/engine/kernels/layer_norm';
import { rmsNormBackward, rmsNormBackwardGamma } from '../../src/engine/kernels/rms_norm';
import { ropeBackward } from '../../src/engine/kernels/rope';
import { geluTanhBackward, siluMulBackward } from '../../src/engine/kernels/activations';
import { pixelShuffleBackward } from '../../src/engine/kernels/pixel_shuffle';
import * as cpuLinear from '../../src/engine/cpu/linear';
import * as cpuEmb from '../../src/engine/cpu/embedding';
import * as cpuLn from '../../src/engine/cpu/layer_norm';
import * as cpuRms from '../../src/engine/cpu/rms_norm';
import * as cpuRope from '../../src/engine/cpu/rope';
import * as cpuAct from '../../src/engine/cpu/activations';
import * as cpuPs from '../../src/engine/cpu/pixel_shuffle';
import { quantizeQ4, quantizeQ8 } from '../../src/engine/load/quantize';
import type { LinearWeight } from '../../src/engine/ops/ops';
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

/** A random weight of the given storage: host form for the twin, tensors for the kernel. */
function makeWeight(kind: 'f32' | 'q8' | 'q4', outF: number, inF: number, seed: number, groupSize = 8) {
  const w = randArray(outF * inF, seed);
  if (kind === 'f32') {
    const host: cpuLinear.HostLinearWeight = { kind, inF, outF, w };
    const gpu: LinearWeight = { kind, inF, outF, w: tf.tensor2d(w, [outF, inF]) };
    return { host, gpu };
  }
  if (kind === 'q8') {
    const { q, scale } = quantizeQ8(w, outF, inF);
    const host: cpuLinear.HostLinearWeight = { kind, inF, outF, q, scale };
    const gpu: LinearWeight = { kind, inF, outF, q: tf.tensor2d(q, [outF, Math.ceil(inF / 4)], 'int32'), scale: tf.tensor1d(scale) };
    return { host, gpu };
  }
  const { q, scale } = quantizeQ4(w, outF, inF, groupSize);
  const host: cpuLinear.HostLinearWeight = { kind, inF, outF, groupSize, q, scale };
  const gpu: LinearWeight = {
    kind, inF, outF, groupSize,
    q: tf.tensor2d(q, [outF, Math.ceil(inF / 8)], 'int32'),
    scale: tf.tensor2d(scale, [outF, Math.ceil(inF / groupSize)]),
  };
  return { host, gpu };
}

beforeAll(async () => {
  await initEngineBackend();
});

describe('linear backward dX', () => {
  const shapes = [[1, 5, 3], [7, 13, 9], [10, 37, 21], [5, 64, 40]] as const; // N, inF, outF
  const configs: DxConfig[] = [DEFAULT_DX, { RN: 4, RK: 2 }, { RN: 1, RK: 1 }, { RN: 3, RK: 3 }];
  for (const kind of ['f32', 'q8', 'q4'] as const) {
    for (const [N, inF, outF] of shapes) {
      it(`${kind}: N=${N}, inF=${inF}, outF=${outF} matches the CPU twin for every tile config`, async () => {
        const { host, gpu } = makeWeight(kind, outF, inF, N * 100 + inF, inF % 16 === 0 ? 16 : 8);
        const dy = randArray(N * outF, outF);
        const ref = new Float32Array(N * inF);
        cpuLinear.linearBackward(ref, null, null, dy, null, host, N);
        const dyT = tf.tensor2d(dy, [N, outF]);
        for (const cfg of configs) {
          const got = linearBackwardInput(dyT, gpu, cfg);
          expect(got.shape).toEqual([N, inF]);
          expectClose(await read(got), ref, 1e-4, 1e-4, `dX ${JSON.stringify(cfg)}`);
        }
        tf.dispose([dyT, ...Object.values(gpu).filter((v) => v instanceof tf.Tensor)]);
      });
    }
  }
});

describe('linear backward dW and dBias', () => {
  for (const [N, inF, outF] of [[1, 5, 3], [7, 13, 9], [37, 21, 11], [50, 8, 6]] as const) {
    it(`N=${N}, inF=${inF}, outF=${outF}: dW (1, 3 and default splits) and dBias match the CPU twin`, async () => {
      const x = randArray(N * inF, N + 1);
      const dy = randArray(N * outF, N + 2);
      const host: cpuLinear.HostLinearWeight = { kind: 'f32', inF, outF, w: new Float32Array(outF * inF) };
      const refW = new Float32Array(outF * inF);
      const refB = new Float32Array(outF);
      cpuLinear.linearBackward(null, refW, refB, dy, x, host, N);
      const xT = tf.tensor2d(x, [N, inF]);
      const dyT = tf.tensor2d(dy, [N, outF]);
      for (const splits of [1, 3, undefined]) {
        const got = linearBackwardWeight(dyT, xT, { RO: 3, RK: 2 }, splits);
        expect(got.shape).toEqual([outF, inF]);
        expectClose(await read(got), refW, 1e-4, 1e-4, `dW splits=${splits}`);
      }
      expectClose(await read(linearBackwardWeight(dyT, xT)), refW, 1e-4, 1e-4, 'dW default config');
      expectClose(await read(linearBackwardBias(dyT)), refB, 1e-4, 1e-4, 'dBias');
      expectClose(await read(columnSum(dyT, 4)), refB, 1e-4, 1e-4, 'columnSum 4 splits');
      tf.dispose([xT, dyT]);
    });
  }

  it('is deterministic: the same inputs give bit-identical dW', async () => {
    const [N, inF, outF] = [90, 19, 7];
    const xT = tf.tensor2d(randArray(N * inF, 3), [N, inF]);
    const dyT = tf.tensor2d(randArray(N * outF, 4), [N, outF]);
    const a = await read(linearBackwardWeight(dyT, xT));
    const b = await read(linearBackwardWeight(dyT, xT));
    expect(Array.from(a)).toEqual(Array.from(b));
    tf.dispose([xT, dyT]);
  });
});

describe('embedding backward', () => {
  it('dTable of an f32 table matches the CPU twin (repeated ids, unused rows)', async () => {
    const [V, C] = [11, 7];
    const ids = Int32Array.of(3, 0, 3, 10, 3, 5, 0);
    const dy = randArray(ids.length * C, 5);
    const ref = new Float32Array(V * C);
    cpuEmb.embeddingBackward(ref, dy, ids, V, C);
    const got = embeddingBackward(tf.tensor2d(dy, [ids.length, C]), tf.tensor1d(ids, 'int32'), V);
    expect(got.shape).toEqual([V, C]);
    expectClose(await read(got), ref, 1e-5, 1e-5);
  });
});

describe('norm backwards', () => {
  for (const [N, C] of [[1, 5], [3, 33], [20, 100], [37, 70]] as const) {
    it(`layerNorm dx, dgamma, dbeta match the CPU twin for N=${N}, C=${C}`, async () => {
      const x = randArray(N * C, N * 10 + C, 2, 30); // a large mean, as residual streams have
      const w = randArray(C, 1);
      const b = randArray(C, 2);
      const dy = randArray(N * C, 3);
      const mean = new Float32Array(N);
      const rstd = new Float32Array(N);
      cpuLn.layerNormForward(new Float32Array(N * C), mean, rstd, x, w, b, N, C, 1e-5);
      const refX = new Float32Array(N * C);
      const refW = new Float32Array(C);
      const refB = new Float32Array(C);
      cpuLn.layerNormBackward(refX, refW, refB, dy, x, w, mean, rstd, N, C);
      const [xT, dyT, wT] = [tf.tensor2d(x, [N, C]), tf.tensor2d(dy, [N, C]), tf.tensor1d(w)];
      expectClose(await read(layerNormBackward(dyT, xT, wT, 1e-5)), refX, 2e-4, 2e-3, 'dx');
      for (const rows of [1, 4, 16]) {
        expectClose(await read(layerNormBackwardGamma(dyT, xT, 1e-5, rows)), refW, 2e-4, 1e-3, `dgamma rows=${rows}`);
      }
      expectClose(await read(columnSum(dyT)), refB, 1e-4, 1e-4, 'dbeta');
      tf.dispose([xT, dyT, wT]);
    });

    it(`rmsNorm dx, dgamma match the CPU twin for N=${N}, C=${C}`, async () => {
      const x = randArray(N * C, N * 20 + C, 3);
      const w = randArray(C, 4);
      const dy = randArray(N * C, 5);
      const rstd = new Float32Array(N);
      cpuRms.rmsNormForward(new Float32Array(N * C), rstd, x, w, N, C, 1e-6);
      const refX = new Float32Array(N * C);
      const refW = new Float32Array(C);
      cpuRms.rmsNormBackward(refX, refW, dy, x, w, rstd, N, C);
      const [xT, dyT, wT] = [tf.tensor2d(x, [N, C]), tf.tensor2d(dy, [N, C]), tf.tensor1d(w)];
      expectClose(await read(rmsNormBackward(dyT, xT, wT, 1e-6)), refX, 1e-4, 1e-3, 'dx');
      for (const rows of [1, 5, 16]) {
        expectClose(await read(rmsNormBackwardGamma(dyT, xT, 1e-6, rows)), refW, 1e-4, 1e-3, `dgamma rows=${rows}`);
      }
      tf.dispose([xT, dyT, wT]);
    });
  }
});

describe('rope backward', () => {
  for (const c of [{ B: 1, T: 3, NH: 3, HS: 8 }, { B: 2, T: 7, NH: 2, HS: 6 }]) {
    it(`matches the CPU twin for ${JSON.stringify(c)}`, async () => {
      const { B, T, NH, HS } = c;
      const dy = randArray(B * T * NH * HS, T + HS);
      const rng = mulberry32(T);
      const pos = Int32Array.from({ length: B * T }, () => Math.floor(rng() * 3000));
      const ref = new Float32Array(dy.length);
      cpuRope.ropeBackward(ref, dy, pos, B, T, NH, HS, 10000);
      const got = ropeBackward(tf.tensor3d(dy, [B, T, NH * HS]), tf.tensor2d(pos, [B, T], 'int32'), NH, HS, 10000);
      expectClose(await read(got), ref, 2e-5, 2e-5);
    });
  }
});

describe('activation backwards', () => {
  for (const [N, I] of [[3, 5], [4, 32], [7, 19]] as const) {
    it(`geluTanh and siluMul match the CPU twins for (${N}, ${I})`, async () => {
      const n = N * I;
      const x = randArray(n, n, 3);
      const up = randArray(n, n + 1);
      const dy = randArray(n, n + 2);
      const refG = new Float32Array(n);
      cpuAct.geluTanhBackward(refG, x, dy, n);
      const refGate = new Float32Array(n);
      const refUp = new Float32Array(n);
      cpuAct.siluMulBackward(refGate, refUp, dy, x, up, n);
      const [xT, upT, dyT] = [tf.tensor2d(x, [N, I]), tf.tensor2d(up, [N, I]), tf.tensor2d(dy, [N, I])];
      expectClose(await read(geluTanhBackward(dyT, xT)), refG, 1e-5, 1e-4, 'gelu dx');
      expectClose(await read(siluMulBackward('gate', dyT, xT, upT)), refGate, 1e-5, 1e-4, 'dGate');
      expectClose(await read(siluMulBackward('up', dyT, xT, upT)), refUp, 1e-5, 1e-4, 'dUp');
      tf.dispose([xT, upT, dyT]);
    });
  }
});

describe('pixelShuffle backward', () => {
  for (const [B, P, C, s] of [[1, 16, 3, 2], [2, 36, 8, 3], [1, 64, 5, 4]] as const) {
    it(`matches the CPU twin for B=${B}, P=${P}, C=${C}, s=${s}`, async () => {
      const n = B * P * C;
      const dy = randArray(n, n);
      const ref = new Float32Array(n);
      cpuPs.pixelShuffleBackward(ref, dy, B, P, C, s);
      const got = pixelShuffleBackward(tf.tensor3d(dy, [B, P / (s * s), C * s * s]), s, P);
      expect(got.shape).toEqual([B, P, C]);
      expect(Array.from(await read(got))).toEqual(Array.from(ref));
    });
  }
});
