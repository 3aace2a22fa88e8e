// Idefics3 pixel shuffle forward as a WGSL gather (shaders/pixel_shuffle.wgsl).
// CPU twin: src/engine/cpu/pixel_shuffle.ts. Backward: pixelShuffleBackward, the inverse
// permutation as a gather (shaders/pixel_shuffle_backward.wgsl).
//
// B batch, P patches (side^2), C channels, s scale factor.
import type * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/pixel_shuffle.wgsl?raw';
import backwardWgsl from '../../../shaders/pixel_shuffle_backward.wgsl?raw';
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

/** dInp (B, P, C) of pixelShuffleForward from dOut (B, P/s^2, C*s^2). */
export function pixelShuffleBackward(dOut: tf.Tensor3D, factor: number, P: number): tf.Tensor3D {
  const [B, tokens, width] = dOut.shape;
  const s2 = factor * factor;
  const side = Math.round(Math.sqrt(P));
  if (side * side !== P || side % factor !== 0 || tokens * s2 !== P || width % s2 !== 0) {
    throw new Error(`kernels/pixel_shuffle.ts backward: dOut ${JSON.stringify(dOut.shape)} does not come from P=${P} patches with factor ${factor}`);
  }
  const C = width / s2;
  const vec = C % 4 === 0 ? 4 : 1;
  const program = makeProgram({
    op: 'pixel_shuffle',
    variant: 'backward',
    wgsl: backwardWgsl,
    constants: { S: factor, VEC: vec, VTYPE: vec === 4 ? 'vec4<f32>' : 'f32' },
    variableNames: ['dy'],
    outputShape: [B, P, C],
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(dOut.size / vec, WG), 1, 1],
    size: true,
    uniforms: 'side : i32, C : i32,',
  });
  program.outputComponent = vec;
  return runProgram(program, [dOut], 'float32', [i32u(side), i32u(C)]) as tf.Tensor3D;
}
