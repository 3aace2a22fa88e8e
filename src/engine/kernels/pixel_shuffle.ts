// Idefics3 pixel shuffle forward as a WGSL gather (shaders/pixel_shuffle.wgsl).
// CPU twin: src/engine/cpu/pixel_shuffle.ts. Forward only; backward is the inverse scatter.
//
// B batch, P patches (side^2), C channels, s scale factor.
import type * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/pixel_shuffle.wgsl?raw';
import { groupsFor, i32u, makeProgram, runProgram } from './program';

const WG = 128;

/** x (B, P, C) -> (B, P/s^2, C*s^2), as transformers' Idefics3Connector.pixel_shuffle. */
export function pixelShuffleForward(x: tf.Tensor3D, factor: number): tf.Tensor3D {
  const [B, P, C] = x.shape;
  const side = Math.round(Math.sqrt(P));
  if (side * side !== P) throw new Error(`kernels/pixel_shuffle.ts: P=${P} patches is not a square number`);
  if (!Number.isInteger(factor) || factor < 1 || side % factor !== 0) {
    throw new Error(`kernels/pixel_shuffle.ts: scale factor ${factor} does not divide the patch grid side ${side}`);
  }
  const vec = C % 4 === 0 ? 4 : 1;
  const outShape = [B, P / (factor * factor), C * factor * factor];
  const program = makeProgram({
    op: 'pixel_shuffle',
    variant: 'forward',
    wgsl,
    constants: { S: factor, VEC: vec, VTYPE: vec === 4 ? 'vec4<f32>' : 'f32' },
    variableNames: ['x'],
    outputShape: outShape,
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(x.size / vec, WG), 1, 1],
    size: true,
    uniforms: 'side : i32,',
  });
  program.outputComponent = vec;
  return runProgram(program, [x], 'float32', [i32u(side)]) as tf.Tensor3D;
}
