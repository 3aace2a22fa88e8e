// Elementwise activations as WGSL kernels: geluTanh (shaders/gelu_tanh.wgsl) and the SwiGLU
// gate siluMul (shaders/silu_mul.wgsl). CPU twins: src/engine/cpu/activations.ts.
// Both use vec4 loads/stores when the length is a multiple of 4, scalar otherwise.
// Forward only; the backward kernels will sit beside them.
import type * as tf from '@tensorflow/tfjs';
import geluWgsl from '../../../shaders/gelu_tanh.wgsl?raw';
import siluMulWgsl from '../../../shaders/silu_mul.wgsl?raw';
import { groupsFor, makeProgram, runProgram } from './program';

const WG = 128;

/** Shared setup of a flat elementwise program over `n` floats. */
function elementwise(op: string, wgsl: string, variableNames: string[], shape: number[], n: number) {
  const vec = n % 4 === 0 ? 4 : 1;
  const program = makeProgram({
    op,
    variant: `forward_vec${vec}`,
    wgsl,
    constants: { VTYPE: vec === 4 ? 'vec4<f32>' : 'f32' },
    variableNames,
    outputShape: shape,
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(n / vec, WG), 1, 1],
    size: true,
  });
  // tfjs binds output and inputs as vec4 arrays and sets uniforms.size = n / 4.
  program.outputComponent = vec;
  return program;
}

/** tanh-approximated GELU (gelu_pytorch_tanh): x (N, I) -> (N, I). */
export function geluTanhForward(x: tf.Tensor2D): tf.Tensor2D {
  const program = elementwise('gelu_tanh', geluWgsl, ['x'], x.shape, x.size);
  return runProgram(program, [x], 'float32') as tf.Tensor2D;
}

/** silu(gate) * up: gate (N, I), up (N, I) -> (N, I). */
export function siluMulForward(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  if (gate.shape[0] !== up.shape[0] || gate.shape[1] !== up.shape[1]) {
    throw new Error(`kernels/activations.ts siluMul: gate ${JSON.stringify(gate.shape)} and up ${JSON.stringify(up.shape)} differ`);
  }
  const program = elementwise('silu_mul', siluMulWgsl, ['gate', 'up'], gate.shape, gate.size);
  return runProgram(program, [gate, up], 'float32') as tf.Tensor2D;
}
