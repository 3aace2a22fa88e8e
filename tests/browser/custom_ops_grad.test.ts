// Gradients through the custom ops (ops/custom_grad.ts) equal tfjs autodiff of the stock ops
// (ops/stock_ops.ts) on the same inputs: for every op but attention, tf.grads of
// loss = sum(op(inputs) * R) with a random R, for each differentiable input. Linear runs with
// f32, q8 and q4 weights (quantised: gradient to x and bias; the packed weight is frozen).
// Also: tf.variableGrads on a small LoRA-shaped block, the error for a gradient an op does not
// have, and that repeated gradient calls leak no tensors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend, webgpuBackend } from '../../src/engine/backend';
import { createCustomOps } from '../../src/engine/ops/custom_ops';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import type { LinearWeight, Ops } from '../../src/engine/ops/ops';
import { quantizeQ4, quantizeQ8 } from '../../src/engine/load/quantize';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function randArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => randn(rng) * scale);
}

function rand(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(randArray(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}

const custom = createCustomOps();
const stock = createStockOps();

/**
 * Gradients of sum(f(ops, ...xs) * R) with respect to every x, for both op sets, compared
 * elementwise. R is fixed per call so both sides see the same upstream gradient.
 */
async function compareGrads(
  label: string,
  xs: tf.Tensor[],
  f: (ops: Ops, ...xs: tf.Tensor[]) => tf.Tensor,
  atol = 1e-4,
  rtol = 1e-3,
): Promise<void> {
  const outShape = tf.tidy(() => f(stock, ...xs).shape);
  const R = rand(outShape, 99);
  const gradsOf = (ops: Ops) => tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(ops, ...args), R)))(xs);
  const got = gradsOf(custom);
  const ref = gradsOf(stock);
  for (let i = 0; i < xs.length; i++) {
    expect(got[i].shape, `${label} grad ${i} shape`).toEqual(xs[i].shape);
    expectClose(await got[i].data(), await ref[i].data(), atol, rtol, `${label}: grad of input ${i}`);
  }
  tf.dispose([R, ...got, ...ref]);
}

type QuantWeight = Exclude<LinearWeight, { kind: 'f32' }>;

function quantised(kind: 'q8' | 'q4', outF: number, inF: number, seed: number, bias: tf.Tensor1D): QuantWeight {
  const w = randArray(outF * inF, seed);
  if (kind === 'q8') {
    const { q, scale } = quantizeQ8(w, outF, inF);
    return { kind, inF, outF, q: tf.tensor2d(q, [outF, Math.ceil(inF / 4)], 'int32'), scale: tf.tensor1d(scale), bias };
  }
  const groupSize = 8;
  const { q, scale } = quantizeQ4(w, outF, inF, groupSize);
  return {
    kind, inF, outF, groupSize, bias,
    q: tf.tensor2d(q, [outF, Math.ceil(inF / 8)], 'int32'),
    scale: tf.tensor2d(scale, [outF, Math.ceil(inF / groupSize)]),
  };
}

beforeAll(async () => {
  await initEngineBackend();
});

describe('custom op gradients equal stock autodiff', () => {
  it('linear, f32 weight with bias: dx, dW, dBias', async () => {
    const [N, inF, outF] = [9, 13, 7];
    await compareGrads('linear f32', [rand([N, inF], 1), rand([outF, inF], 2), rand([outF], 3)], (ops, x, w, b) =>
      ops.linear(x as tf.Tensor2D, { kind: 'f32', inF, outF, w: w as tf.Tensor2D, bias: b as tf.Tensor1D }),
    );
  });

  it('linear, f32 weight without bias, many rows (split dW reduction)', async () => {
    const [N, inF, outF] = [70, 6, 5];
    await compareGrads('linear f32 no bias', [rand([N, inF], 4), rand([outF, inF], 5)], (ops, x, w) =>
      ops.linear(x as tf.Tensor2D, { kind: 'f32', inF, outF, w: w as tf.Tensor2D }),
    );
  });

  for (const kind of ['q8', 'q4'] as const) {
    it(`linear, ${kind} weight (frozen) with bias: dx and dBias`, async () => {
      const [N, inF, outF] = [6, 21, 11];
      const frozen = quantised(kind, outF, inF, 6, tf.tensor1d(randArray(outF, 7)));
      await compareGrads(`linear ${kind}`, [rand([N, inF], 8), frozen.bias as tf.Tensor1D], (ops, x, b) =>
        ops.linear(x as tf.Tensor2D, { ...frozen, bias: b as tf.Tensor1D }),
      );
      tf.dispose([frozen.q, frozen.scale, frozen.bias as tf.Tensor]);
    });
  }

  it('embedding, f32 table: dTable', async () => {
    const ids = tf.tensor1d([4, 1, 4, 0, 9], 'int32');
    const [V, C] = [10, 6];
    await compareGrads('embedding', [rand([V, C], 9)], (ops, table) =>
      ops.embedding(ids, { kind: 'f32', inF: C, outF: V, w: table as tf.Tensor2D }),
    );
    ids.dispose();
  });

  it('layerNorm: dx, dgamma, dbeta', async () => {
    const [N, C] = [19, 37];
    await compareGrads('layerNorm', [rand([N, C], 10, 2), rand([C], 11), rand([C], 12)], (ops, x, g, b) =>
      ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-6),
    );
  });

  it('rmsNorm: dx, dgamma', async () => {
    const [N, C] = [21, 30];
    await compareGrads('rmsNorm', [rand([N, C], 13, 2), rand([C], 14)], (ops, x, g) =>
      ops.rmsNorm(x as tf.Tensor2D, g as tf.Tensor1D, 1e-5),
    );
  });

  it('rope: dx', async () => {
    const [B, T, NH, HS] = [2, 5, 3, 8];
    const positions = tf.tensor2d([0, 1, 2, 3, 4, 7, 8, 9, 400, 1500], [B, T], 'int32');
    await compareGrads('rope', [rand([B, T, NH * HS], 15)], (ops, x) => ops.rope(x as tf.Tensor3D, positions, NH, HS, 10000), 1e-4, 1e-3);
    positions.dispose();
  });

  it('geluTanh: dx', async () => {
    await compareGrads('geluTanh', [rand([5, 11], 16, 3)], (ops, x) => ops.geluTanh(x as tf.Tensor2D));
  });

  it('siluMul: dGate, dUp', async () => {
    await compareGrads('siluMul', [rand([4, 9], 17, 3), rand([4, 9], 18)], (ops, g, u) => ops.siluMul(g as tf.Tensor2D, u as tf.Tensor2D));
  });

  it('pixelShuffle: dx', async () => {
    await compareGrads('pixelShuffle', [rand([2, 36, 5], 19)], (ops, x) => ops.pixelShuffle(x as tf.Tensor3D, 3), 1e-6, 1e-6);
  });

  it('a chain of ops (norm, linear, activation) differentiates end to end', async () => {
    const [N, C, I] = [7, 12, 10];
    await compareGrads('chain', [rand([N, C], 20), rand([C], 21), rand([I, C], 22), rand([C, I], 23)], (ops, x, g, w1, w2) => {
      const h = ops.rmsNorm(x as tf.Tensor2D, g as tf.Tensor1D, 1e-5);
      const a = ops.geluTanh(ops.linear(h, { kind: 'f32', inF: C, outF: I, w: w1 as tf.Tensor2D }));
      return ops.linear(a, { kind: 'f32', inF: I, outF: C, w: w2 as tf.Tensor2D });
    });
  });
});

describe('custom op gradients in training use', () => {
  it('tf.variableGrads reaches LoRA-shaped f32 variables around a frozen q8 base', async () => {
    const [N, inF, outF, r] = [8, 16, 12, 3];
    const base = quantised('q8', outF, inF, 30, tf.tensor1d(randArray(outF, 31)));
    const x = rand([N, inF], 32) as tf.Tensor2D;
    const R = rand([N, outF], 33);
    const A = tf.variable(rand([r, inF], 34, 0.1), true, 'lora_A');
    const B = tf.variable(rand([outF, r], 35, 0.1), true, 'lora_B');
    const lossOf = (ops: Ops) => () =>
      tf.tidy(() => {
        const y = ops.linear(x, base); // (N, outF), frozen
        const a = ops.linear(x, { kind: 'f32', inF, outF: r, w: A as unknown as tf.Tensor2D }); // (N, r)
        const b = ops.linear(a, { kind: 'f32', inF: r, outF, w: B as unknown as tf.Tensor2D }); // (N, outF)
        return tf.sum(tf.mul(tf.add(y, b), R)) as tf.Scalar;
      });
    const got = tf.variableGrads(lossOf(custom), [A, B]);
    const ref = tf.variableGrads(lossOf(stock), [A, B]);
    expectClose(await got.value.data(), await ref.value.data(), 1e-3, 1e-4, 'loss');
    for (const name of [A.name, B.name]) {
      expectClose(await got.grads[name].data(), await ref.grads[name].data(), 1e-4, 1e-3, `grad ${name}`);
    }
    tf.dispose([got.value, ref.value, ...Object.values(got.grads), ...Object.values(ref.grads), A, B, x, R, base.q, base.scale, base.bias as tf.Tensor]);
  });

  it('computes only the gradients asked for: no dW kernel for a frozen f32 weight', () => {
    const [N, inF, outF] = [5, 7, 6];
    const x = rand([N, inF], 60) as tf.Tensor2D;
    const w = rand([outF, inF], 61) as tf.Tensor2D;
    // Record the shader keys of every program the backend runs while the gradients are taken.
    const backend = webgpuBackend();
    const original = backend.runWebGPUProgram;
    const keys: string[] = [];
    backend.runWebGPUProgram = (...args: Parameters<typeof original>) => {
      keys.push(args[0].shaderKey);
      return original.apply(backend, args);
    };
    const gradKeys = (xs: tf.Tensor[], f: (...a: tf.Tensor[]) => tf.Tensor) => {
      keys.length = 0;
      tf.dispose(tf.grads(f)(xs));
      return [...keys];
    };
    try {
      const weight = (wt: tf.Tensor): LinearWeight => ({ kind: 'f32', inF, outF, w: wt as tf.Tensor2D });
      const onlyX = gradKeys([x], (xx) => tf.sum(custom.linear(xx as tf.Tensor2D, weight(w))));
      const onlyW = gradKeys([w], (ww) => tf.sum(custom.linear(x, weight(ww))));
      expect(onlyX.some((k) => k.startsWith('linear_backward_dx'))).toBe(true);
      expect(onlyX.some((k) => k.startsWith('linear_backward_dw'))).toBe(false);
      expect(onlyW.some((k) => k.startsWith('linear_backward_dw'))).toBe(true);
      expect(onlyW.some((k) => k.startsWith('linear_backward_dx'))).toBe(false);
    } finally {
      backend.runWebGPUProgram = original;
      tf.dispose([x, w]);
    }
  });

  it('names the input when asked for a gradient an op does not have (packed q8 words)', () => {
    const base = quantised('q8', 4, 8, 40, tf.tensor1d([0, 0, 0, 0]));
    const x = rand([2, 8], 41) as tf.Tensor2D;
    const qAsFloat = tf.cast(base.q, 'float32');
    expect(() =>
      tf.grads((q: tf.Tensor) => tf.sum(custom.linear(x, { ...base, q: tf.cast(q, 'int32') as tf.Tensor2D })))([qAsFloat]),
    ).toThrow(/backprop|gradient/i);
    tf.dispose([x, qAsFloat, base.q, base.scale, base.bias as tf.Tensor]);
  });

  it('repeated gradient calls leak no tensors', async () => {
    const [N, C, I] = [6, 12, 8];
    const x = rand([N, C], 50) as tf.Tensor2D;
    const ones = tf.ones([I]) as tf.Tensor1D;
    const g = rand([C], 51) as tf.Tensor1D;
    const b = rand([C], 52) as tf.Tensor1D;
    const w = tf.variable(rand([I, C], 53), true, 'w_leak');
    const base = quantised('q4', I, C, 54, tf.tensor1d(randArray(I, 55)));
    const positions = tf.tensor2d([0, 1, 2, 3, 4, 5], [1, N], 'int32');
    const step = () => {
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const h = custom.layerNorm(x, g, b, 1e-6);
          const r = custom.rope(h.reshape([1, N, C]) as tf.Tensor3D, positions, 2, 6, 10000).reshape([N, C]) as tf.Tensor2D;
          const y = custom.siluMul(custom.linear(r, { kind: 'f32', inF: C, outF: I, w: w as unknown as tf.Tensor2D }), custom.linear(r, base));
          return tf.sum(custom.geluTanh(custom.rmsNorm(y, ones, 1e-5))) as tf.Scalar;
        }),
      [w]);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step(); // first call compiles pipelines and may cache tables (rope inv_freq)
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ones, g, b, w, base.q, base.scale, base.bias as tf.Tensor, positions]);
  });
});
