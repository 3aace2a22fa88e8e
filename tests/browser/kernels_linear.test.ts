// Every linear variant (v1 naive, v2 tiled, v3 register-blocked, gemv) for every weight storage (f32, q8, q4) and
// the embedding gather, against their CPU twins, on shapes that are not multiples of 4, of 8
// or of any workgroup / tile size. Results are read with `await data()`: on this backend
// dataSync() goes through an OffscreenCanvas and, under SwiftShader, returned zeros.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend } from '../../src/engine/backend';
import { linearKernel, LINEAR_VARIANTS, type TiledConfig } from '../../src/engine/kernels/linear';
import { embeddingKernel } from '../../src/engine/kernels/embedding';
import { linearForward, type HostLinearWeight } from '../../src/engine/cpu/linear';
import { embeddingForward } from '../../src/engine/cpu/embedding';
import { quantizeQ4, quantizeQ8 } from '../../src/engine/load/quantize';
import type { LinearWeight } from '../../src/engine/ops/ops';
import { mulberry32, randn, type Rng } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

type Kind = 'f32' | 'q8' | 'q4';

function randArray(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => randn(rng));
}

/** A random weight in both forms: host arrays for the twin, tensors for the kernel. */
export function makeWeight(rng: Rng, kind: Kind, outF: number, inF: number, withBias: boolean, groupSize = 8): {
  host: HostLinearWeight;
  gpu: LinearWeight;
} {
  const w = randArray(rng, outF * inF);
  const bias = withBias ? randArray(rng, outF) : undefined;
  const gBias = bias ? tf.tensor1d(bias) : undefined;
  if (kind === 'f32') {
    return {
      host: { kind, inF, outF, w, bias },
      gpu: { kind, inF, outF, w: tf.tensor2d(w, [outF, inF]), bias: gBias },
    };
  }
  if (kind === 'q8') {
    const { q, scale } = quantizeQ8(w, outF, inF);
    return {
      host: { kind, inF, outF, q, scale, bias },
      gpu: { kind, inF, outF, q: tf.tensor2d(q, [outF, Math.ceil(inF / 4)], 'int32'), scale: tf.tensor1d(scale), bias: gBias },
    };
  }
  const { q, scale } = quantizeQ4(w, outF, inF, groupSize);
  return {
    host: { kind, inF, outF, groupSize, q, scale, bias },
    gpu: {
      kind, inF, outF, groupSize,
      q: tf.tensor2d(q, [outF, Math.ceil(inF / 8)], 'int32'),
      scale: tf.tensor2d(scale, [outF, Math.ceil(inF / groupSize)]),
      bias: gBias,
    },
  };
}

function disposeWeight(w: LinearWeight): void {
  if (w.kind === 'f32') w.w.dispose();
  else {
    w.q.dispose();
    w.scale.dispose();
  }
  w.bias?.dispose();
}

const SMALL_TILE: TiledConfig = { TN: 8, TO: 8, TK: 8, RN: 2, RO: 2 };

beforeAll(async () => {
  await initEngineBackend();
});

describe('linear kernels match the CPU twin', () => {
  const cases: Array<{ kind: Kind; inFs: number[]; groupSize?: number }> = [
    { kind: 'f32', inFs: [5, 33, 67] },
    { kind: 'q8', inFs: [5, 33, 67] },
    { kind: 'q4', inFs: [5, 33, 67], groupSize: 8 },
    { kind: 'q4', inFs: [27, 91], groupSize: 32 },
  ];
  for (const { kind, inFs, groupSize } of cases) {
    it(`${kind}${groupSize ? ` group ${groupSize}` : ''}: v1, v2, v3, gemv (two configs each for v2, v3, gemv)`, async () => {
      const rng = mulberry32(1234 + inFs[0]);
      let checked = 0;
      for (const inF of inFs) {
        for (const outF of [7, 30, 65]) {
          const withBias = (inF + outF) % 2 === 1;
          const { host, gpu } = makeWeight(rng, kind, outF, inF, withBias, groupSize);
          for (const N of [1, 3, 17]) {
            const xs = randArray(rng, N * inF);
            const ref = new Float32Array(N * outF);
            linearForward(ref, xs, host, N);
            const x = tf.tensor2d(xs, [N, inF]);
            const runs: Array<[string, () => tf.Tensor]> = [
              ...LINEAR_VARIANTS.map((v) => [v, () => linearKernel(x, gpu, v)] as [string, () => tf.Tensor]),
              ['v2 small tile', () => linearKernel(x, gpu, 'v2', SMALL_TILE)],
              ['gemv WG=16 R=3', () => linearKernel(x, gpu, 'gemv', undefined, { WG: 16, R: 3 })],
              ['v3 RN=3 RO=5', () => linearKernel(x, gpu, 'v3', undefined, undefined, { RN: 3, RO: 5 })],
            ];
            for (const [name, run] of runs) {
              const y = run();
              expect(y.shape).toEqual([N, outF]);
              expectClose(await y.data(), ref, 2e-4, 2e-4, `${kind} ${name} N=${N} inF=${inF} outF=${outF} bias=${withBias}`);
              y.dispose();
              checked++;
            }
            x.dispose();
          }
          disposeWeight(gpu);
        }
      }
      expect(checked).toBe(inFs.length * 3 * 3 * (LINEAR_VARIANTS.length + 3));
    });
  }

  it('rejects a weight whose tensors do not match its declared layout, naming the field', () => {
    const rng = mulberry32(5);
    const { gpu } = makeWeight(rng, 'q8', 6, 10, false);
    // inF 14 needs 4 words per row; the tensor holds 3 (packed for inF 10).
    const bad: LinearWeight = { ...gpu, inF: 14 } as LinearWeight;
    const x = tf.zeros([2, 14]) as tf.Tensor2D;
    expect(() => linearKernel(x, bad, 'v1')).toThrow(/field 'q'/);
    x.dispose();
    disposeWeight(gpu);
  });

  it('leaks no tensors', () => {
    const rng = mulberry32(6);
    const { gpu } = makeWeight(rng, 'q4', 9, 19, true, 8);
    const x = tf.tensor2d(randArray(rng, 3 * 19), [3, 19]);
    const before = tf.memory().numTensors;
    for (const v of LINEAR_VARIANTS) linearKernel(x, gpu, v).dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    disposeWeight(gpu);
  });
});

describe('embedding kernel matches the CPU twin', () => {
  for (const [kind, C, groupSize] of [['f32', 13, 8], ['q8', 13, 8], ['q4', 13, 8], ['q4', 27, 32]] as Array<[Kind, number, number]>) {
    it(`${kind} C=${C}`, async () => {
      const rng = mulberry32(77 + C);
      const V = 37;
      const { host, gpu } = makeWeight(rng, kind, V, C, false, groupSize);
      const idsArr = Int32Array.from([0, 36, 5, 5, 17, 1, 30]);
      const ref = new Float32Array(idsArr.length * C);
      embeddingForward(ref, idsArr, host);
      const ids = tf.tensor1d(idsArr, 'int32');
      const y = embeddingKernel(ids, gpu);
      expect(y.shape).toEqual([idsArr.length, C]);
      expectClose(await y.data(), ref, 1e-6, 1e-6, `embedding ${kind}`);
      y.dispose();
      ids.dispose();
      disposeWeight(gpu);
    });
  }
});
