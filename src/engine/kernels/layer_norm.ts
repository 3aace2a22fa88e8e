// LayerNorm forward as one WGSL kernel (shaders/layer_norm.wgsl): one workgroup per row,
// threads reduce over C in workgroup memory. CPU twin: src/engine/cpu/layer_norm.ts.
// Forward only; `layerNormBackward` will sit beside it (it needs mean and rstd per row).
//
// N rows, C channels.
import type * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/layer_norm.wgsl?raw';
import { f32u, makeProgram, runProgram } from './program';

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
