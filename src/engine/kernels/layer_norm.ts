// LayerNorm forward as one WGSL kernel (shaders/layer_norm.wgsl): one workgroup per row,
// threads reduce over C in workgroup memory. CPU twin: src/engine/cpu/layer_norm.ts.
// Backward: layerNormBackward (dx, shaders/layer_norm_backward.wgsl), layerNormBackwardGamma
// (dgamma partials per split of rows, shaders/layer_norm_backward_dgamma.wgsl, then an
// ordered column sum) and dbeta = columnSum(dy). Both recompute mean and rstd from x with the
// forward's algorithm instead of saving them (the forward program has a single output).
//
// N rows, C channels.
import type * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/layer_norm.wgsl?raw';
import backwardWgsl from '../../../shaders/layer_norm_backward.wgsl?raw';
import dgammaWgsl from '../../../shaders/layer_norm_backward_dgamma.wgsl?raw';
import { f32u, i32u, makeProgram, runProgram } from './program';
import { columnSum } from './linear';

/** Threads per row; each thread sums all WG partials after one barrier, so keep it modest. */
const WG = 64;

/** x (N, C), gamma (C), beta (C) -> (N, C). */
export function layerNormForward(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [N, C] = x.shape;
  if (gamma.size !== C || beta.size !== C) {
    throw new Error(`kernels/layer_norm.ts: gamma (${gamma.size}) and beta (${beta.size}) must have C=${C} elements`);
  }
  const program = makeProgram({
    op: 'layer_norm',
    variant: 'forward',
    wgsl,
    constants: { WG },
    variableNames: ['x', 'gamma', 'beta'],
    outputShape: [N, C],
    workgroupSize: [WG, 1, 1],
    dispatch: [N, 1, 1],
    uniforms: 'eps : f32,',
  });
  return runProgram(program, [x, gamma, beta], 'float32', [f32u(eps)]) as tf.Tensor2D;
}

/** dInp (N, C) of layerNormForward, given dOut (N, C) and the forward's x and gamma. */
export function layerNormBackward(dOut: tf.Tensor2D, x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [N, C] = x.shape;
  if (dOut.shape[0] !== N || dOut.shape[1] !== C || gamma.size !== C) {
    throw new Error(`kernels/layer_norm.ts backward: dOut ${JSON.stringify(dOut.shape)}, x ${JSON.stringify(x.shape)}, gamma (${gamma.size}) disagree`);
  }
  const program = makeProgram({
    op: 'layer_norm', variant: 'backward', wgsl: backwardWgsl, constants: { WG },
    variableNames: ['dy', 'x', 'gamma'], outputShape: [N, C], workgroupSize: [WG, 1, 1], dispatch: [N, 1, 1],
    uniforms: 'eps : f32,',
  });
  return runProgram(program, [dOut, x, gamma], 'float32', [f32u(eps)]) as tf.Tensor2D;
}

/** Rows per split of the dgamma reduction: one workgroup walks this many rows in order. */
export const NORM_ROWS_PER_SPLIT = 16;

/** dWeight (C) of layerNormForward: sum over rows of dOut * xhat, in a fixed order. */
export function layerNormBackwardGamma(dOut: tf.Tensor2D, x: tf.Tensor2D, eps: number, rows = NORM_ROWS_PER_SPLIT): tf.Tensor1D {
  const [N, C] = x.shape;
  const S = Math.ceil(N / rows);
  const program = makeProgram({
    op: 'layer_norm', variant: 'backward_dgamma', wgsl: dgammaWgsl, constants: { WG },
    variableNames: ['dy', 'x'], outputShape: [S, C], workgroupSize: [WG, 1, 1], dispatch: [S, 1, 1],
    uniforms: 'eps : f32, rows : i32,',
  });
  const partial = runProgram(program, [dOut, x], 'float32', [f32u(eps), i32u(rows)]) as tf.Tensor2D; // (S, C)
  const total = columnSum(partial, 1); // (C)
  partial.dispose();
  return total;
}
