// Rotary position embedding forward as a WGSL kernel (shaders/rope.wgsl), HF Llama
// rotate_half convention. CPU twin: src/engine/cpu/rope.ts. Backward (ropeBackward): the
// rotation is orthogonal, so dx is dy rotated by the negative angle, which is the forward
// kernel run on dy with negated positions (no second shader to keep in step with the first).
// It is exact: f32(-p) * invFreq = -(f32(p) * invFreq), and sinCos in shaders/rope.wgsl is odd/even
// symmetric bit for bit (round() ties to even, the polynomials are odd/even in r).
//
// B batch, T tokens, NH heads, HS head size.
import * as tf from '@tensorflow/tfjs';
import wgsl from '../../../shaders/rope.wgsl?raw';
import { ropeInvFreq } from '../cpu/rope';
import { groupsFor, makeProgram, runProgram } from './program';

const WG = 128;

/**
 * inv_freq tables already on the GPU, per (HS, theta): the model calls rope twice per layer
 * with the same table, and a 32-float upload per call would be pure overhead. Tables are
 * recreated if the backend disposed them (e.g. after tf.engine().reset()).
 */
const invFreqTables = new Map<string, tf.Tensor1D>();

function invFreqTensor(HS: number, theta: number): tf.Tensor1D {
  const key = `${HS}_${theta}`;
  let t = invFreqTables.get(key);
  if (!t || t.isDisposed) {
    t = tf.keep(tf.tensor1d(ropeInvFreq(HS, theta), 'float32'));
    invFreqTables.set(key, t);
  }
  return t;
}

/** x (B, T, NH*HS), positions (B, T) int32 -> (B, T, NH*HS). */
export function ropeForward(x: tf.Tensor3D, positions: tf.Tensor2D, nHeads: number, headDim: number, theta: number): tf.Tensor3D {
  const [B, T, width] = x.shape;
  if (width !== nHeads * headDim) {
    throw new Error(`kernels/rope.ts: x has ${width} channels, expected nHeads*headDim = ${nHeads}*${headDim}`);
  }
  if (headDim % 2 !== 0) throw new Error(`kernels/rope.ts: headDim ${headDim} must be even`);
  if (positions.dtype !== 'int32' || positions.shape[0] !== B || positions.shape[1] !== T) {
    throw new Error(`kernels/rope.ts: positions must be int32 (B, T) = (${B}, ${T}), got ${positions.dtype} ${JSON.stringify(positions.shape)}`);
  }
  const nPairs = x.size / 2;
  const program = makeProgram({
    op: 'rope',
    variant: 'forward',
    wgsl,
    constants: { HALF: headDim / 2 },
    variableNames: ['x', 'positions', 'invFreq'],
    outputShape: [B, T, width],
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(nPairs, WG), 1, 1],
  });
  return runProgram(program, [x, positions, invFreqTensor(headDim, theta)], 'float32') as tf.Tensor3D;
}

/** dInp (B, T, NH*HS) of ropeForward from dOut: dOut rotated by -pos * inv_freq. */
export function ropeBackward(dOut: tf.Tensor3D, positions: tf.Tensor2D, nHeads: number, headDim: number, theta: number): tf.Tensor3D {
  const negated = tf.neg(positions); // (B, T) int32; positions are far below 2^24, exact through tfjs's f32 path
  const dx = ropeForward(dOut, negated, nHeads, headDim, theta);
  negated.dispose();
  return dx;
}
