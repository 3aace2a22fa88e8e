// RMSNorm forward as one WGSL kernel (shaders/rms_norm.wgsl): one workgroup per row, threads
// reduce the sum of squares over C in workgroup memory. CPU twin: src/engine/cpu/rms_norm.ts.
// Forward only; `rmsNormBackward` will sit beside it (it needs rstd per row).
//
// N rows, C channels.
import type * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/rms_norm.wgsl?raw';
import { f32u, makeProgram, runProgram } from './program';

/** Threads per row; each thread sums all WG partials after one barrier, so keep it modest. */
const WG = 64;

/** x (N, C), gamma (C) -> (N, C). */
export function rmsNormForward(x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [N, C] = x.shape;
  if (gamma.size !== C) throw new Error(`kernels/rms_norm.ts: gamma has ${gamma.size} elements, expected C=${C}`);
  const program = makeProgram({
    op: 'rms_norm',
    variant: 'forward',
    wgsl,
    constants: { WG },
    variableNames: ['x', 'gamma'],
    outputShape: [N, C],
    workgroupSize: [WG, 1, 1],
    dispatch: [N, 1, 1],
    uniforms: 'eps : f32,',
  });
  return runProgram(program, [x, gamma], 'float32', [f32u(eps)]) as tf.Tensor2D;
}
