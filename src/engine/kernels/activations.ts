// Elementwise activations as WGSL kernels: geluTanh (shaders/gelu_tanh.wgsl) and the SwiGLU
// gate siluMul (shaders/silu_mul.wgsl). CPU twins: src/engine/cpu/activations.ts.
// Both use vec4 loads/stores when the length is a multiple of 4, scalar otherwise.
// Backward: geluTanhBackward (shaders/gelu_tanh_backward.wgsl) and siluMulBackward
// (shaders/silu_mul_backward.wgsl, one dispatch per requested gradient); both recompute from
// the forward's inputs and save nothing.
import type * as tf from '@tensorflow/tfjs';
import geluWgsl from '../../../shaders/gelu_tanh.wgsl?raw';
import siluMulWgsl from '../../../shaders/silu_mul.wgsl?raw';
import geluBackwardWgsl from '../../../shaders/gelu_tanh_backward.wgsl?raw';
import siluMulBackwardWgsl from '../../../shaders/silu_mul_backward.wgsl?raw';
import type { Constant } from './program';
import { groupsFor, makeProgram, runProgram } from './program';

const WG = 128;

/** Shared setup of a flat elementwise program over `n` floats. */
function elementwise(
  op: string,
  wgsl: string,
  variableNames: string[],
  shape: number[],
  n: number,
  pass: 'forward' | 'backward' = 'forward',
  extra: Record<string, Constant> = {},
) {
  const vec = n % 4 === 0 ? 4 : 1;
  const program = makeProgram({
    op,
    variant: `${pass}_vec${vec}`,
    wgsl,
    constants: { VTYPE: vec === 4 ? 'vec4<f32>' : 'f32', ...extra },
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

function checkSame(where: string, a: tf.Tensor, b: tf.Tensor): void {
  if (a.size !== b.size || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`kernels/activations.ts ${where}: shapes ${JSON.stringify(a.shape)} and ${JSON.stringify(b.shape)} differ`);
  }
}

/** dInp (N, I) of geluTanhForward, from dOut (N, I) and the forward's x. */
export function geluTanhBackward(dOut: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
  checkSame('geluTanh backward', dOut, x);
  const program = elementwise('gelu_tanh', geluBackwardWgsl, ['dy', 'x'], x.shape, x.size, 'backward');
  return runProgram(program, [dOut, x], 'float32') as tf.Tensor2D;
}

/** dGate or dUp (N, I) of siluMulForward, from dOut (N, I) and the forward's gate and up. */
export function siluMulBackward(which: 'gate' | 'up', dOut: tf.Tensor2D, gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  checkSame('siluMul backward', dOut, gate);
  checkSame('siluMul backward', gate, up);
  const program = elementwise('silu_mul', siluMulBackwardWgsl, ['dy', 'gate', 'up'], gate.shape, gate.size, 'backward', {
    GRAD_GATE: which === 'gate' ? 'true' : 'false',
  });
  return runProgram(program, [dOut, gate, up], 'float32') as tf.Tensor2D;
}
