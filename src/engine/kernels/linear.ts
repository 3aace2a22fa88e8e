// Linear kernels: y = x W^T (+ b) for f32, q8 and q4 weights (LinearWeight, ops/ops.ts), with
// quantised weights decoded inside the shader and never materialised as f32. CPU twin:
// cpu/linear.ts. Each program is one variant file plus includes (loader of x, weight decoder
// for the storage kind, bias or no bias), so the three storage kinds share one kernel body:
//   v1    shaders/linear_v1_naive.wgsl  one invocation per output; the plain reference
//   v2    shaders/linear_v2_tiled.wgsl  workgroup tiles in shared memory, register blocks (N > 1)
//   v3    shaders/linear_v3_regblock.wgsl  register blocks straight from global memory, no barriers
//   gemv  shaders/linear_gemv.wgsl      one workgroup per few output rows, split-K + tree reduce (N = 1)
// `linearKernel` picks by shape (gemv for decode-sized N, v3 otherwise); tests run every variant.
//
// Backward (the tfjs gradient wiring is in ops/custom_grad.ts):
//   dX    shaders/linear_backward_dx.wgsl      dY W, W decoded in registers (f32/q8/q4), register tiles
//   dW    shaders/linear_backward_dw.wgsl      dY^T X for f32 weights, split over N into partials
//   sums  shaders/linear_backward_colsum.wgsl  dBias and the sum of dW partials, fixed order
// Reductions over N never use atomics: the same inputs give bit-identical gradients.
//
// Choices measured under SwiftShader (the CPU adapter of the test machines; numbers noisy, the
// machine was shared): workgroup barriers are costly there (they suspend every invocation),
// so the shared-memory v2 lost to the barrier-free v3 (x(320,576) W(1536,576) q8: v2 1.6x,
// v3 RN=4 RO=8 2.9x faster than stock f32 tf.matMul), and the GEMV wants a tiny workgroup
// (WG=4, so one SIMD group, R=16 rows) rather than a wide tree reduction (WG=64: 5x slower).
// On a real GPU the balance differs: retune DEFAULT_* there.
//
// N rows of x, inF input features, outF output features.
import type * as tf from '@tensorflow/tfjs';
import type { LinearWeight } from '../ops/ops';
import { groupsFor, i32u, makeProgram, runProgram, type Constant } from './program';
import xWgsl from '../../../shaders/linear_x.wgsl?raw';
import wF32Wgsl from '../../../shaders/linear_w_f32.wgsl?raw';
import wQ8Wgsl from '../../../shaders/linear_w_q8.wgsl?raw';
import wQ4Wgsl from '../../../shaders/linear_w_q4.wgsl?raw';
import biasWgsl from '../../../shaders/linear_bias.wgsl?raw';
import noBiasWgsl from '../../../shaders/linear_bias_none.wgsl?raw';
import v1Wgsl from '../../../shaders/linear_v1_naive.wgsl?raw';
import v2Wgsl from '../../../shaders/linear_v2_tiled.wgsl?raw';
import gemvWgsl from '../../../shaders/linear_gemv.wgsl?raw';
import v3Wgsl from '../../../shaders/linear_v3_regblock.wgsl?raw';
import dxWgsl from '../../../shaders/linear_backward_dx.wgsl?raw';
import dwWgsl from '../../../shaders/linear_backward_dw.wgsl?raw';
import colsumWgsl from '../../../shaders/linear_backward_colsum.wgsl?raw';

export type LinearVariant = 'v1' | 'v2' | 'v3' | 'gemv';
export const LINEAR_VARIANTS: readonly LinearVariant[] = ['v1', 'v2', 'v3', 'gemv'];

/** v2 tile: TN x TO outputs per workgroup, TK inputs per step, RN x RO per invocation. */
export interface TiledConfig {
  TN: number;
  TO: number;
  TK: number;
  RN: number;
  RO: number;
}
/** v3: RN x RO outputs per invocation, no workgroup memory. */
export interface RegBlockConfig {
  RN: number;
  RO: number;
}
/** gemv: WG invocations split inF, R output rows per workgroup. */
export interface GemvConfig {
  WG: number;
  R: number;
}

export const DEFAULT_TILED: TiledConfig = { TN: 32, TO: 32, TK: 16, RN: 4, RO: 4 };
export const DEFAULT_GEMV: GemvConfig = { WG: 4, R: 16 };
export const DEFAULT_REGBLOCK: RegBlockConfig = { RN: 4, RO: 8 };

/** Rows of x up to which the GEMV variant beats the tiled one (decode steps, tiny batches). */
const GEMV_MAX_ROWS = 4;

export function chooseLinearVariant(N: number): LinearVariant {
  return N <= GEMV_MAX_ROWS ? 'gemv' : 'v3';
}

/** The weight decoder include, its bindings (after x) and its constants. */
function weightParts(w: LinearWeight): { wgsl: string; names: string[]; tensors: tf.Tensor[]; constants: Record<string, Constant> } {
  switch (w.kind) {
    case 'f32':
      return { wgsl: wF32Wgsl, names: ['w'], tensors: [w.w], constants: {} };
    case 'q8':
      return { wgsl: wQ8Wgsl, names: ['q', 'scale'], tensors: [w.q, w.scale], constants: {} };
    case 'q4':
      return { wgsl: wQ4Wgsl, names: ['q', 'scale'], tensors: [w.q, w.scale], constants: { GS: w.groupSize } };
  }
}

/** Checks the weight tensors against the layout ops.ts promises; errors name the field. */
export function checkLinearWeight(w: LinearWeight, where: string): void {
  const expect = (t: tf.Tensor, shape: number[], dtype: string, field: string) => {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || t.dtype !== dtype) {
      throw new Error(`${where}: weight field '${field}' is ${t.dtype} [${t.shape}], expected ${dtype} [${shape}] for ${w.kind} outF=${w.outF} inF=${w.inF}`);
    }
  };
  switch (w.kind) {
    case 'f32':
      expect(w.w, [w.outF, w.inF], 'float32', 'w');
      break;
    case 'q8':
      expect(w.q, [w.outF, Math.ceil(w.inF / 4)], 'int32', 'q');
      expect(w.scale, [w.outF], 'float32', 'scale');
      break;
    case 'q4':
      if (w.groupSize % 8 !== 0 || (Math.ceil(w.inF / 8) * 8) % w.groupSize !== 0) {
        throw new Error(`${where}: q4 groupSize ${w.groupSize} must be a multiple of 8 dividing inF=${w.inF} rounded up to 8`);
      }
      expect(w.q, [w.outF, Math.ceil(w.inF / 8)], 'int32', 'q');
      expect(w.scale, [w.outF, Math.ceil(w.inF / w.groupSize)], 'float32', 'scale');
      break;
  }
  if (w.bias) expect(w.bias, [w.outF], 'float32', 'bias');
}

/** x (N, inF) -> (N, outF) with the given variant (default: chosen by N). */
export function linearKernel(
  x: tf.Tensor2D,
  w: LinearWeight,
  variant: LinearVariant = chooseLinearVariant(x.shape[0]),
  tiled: TiledConfig = DEFAULT_TILED,
  gemv: GemvConfig = DEFAULT_GEMV,
  regblock: RegBlockConfig = DEFAULT_REGBLOCK,
): tf.Tensor2D {
  const where = `linear(${w.kind}, ${variant})`;
  const [N, inF] = x.shape;
  if (inF !== w.inF) throw new Error(`${where}: x has ${inF} features, the weight expects inF=${w.inF}`);
  if (x.dtype !== 'float32') throw new Error(`${where}: x must be float32, got ${x.dtype}`);
  checkLinearWeight(w, where);
  const { outF } = w;
  const wp = weightParts(w);
  const bias = w.bias ? { wgsl: biasWgsl, names: ['bias'], tensors: [w.bias] } : { wgsl: noBiasWgsl, names: [], tensors: [] };
  const includes = [xWgsl, wp.wgsl, bias.wgsl];
  const names = ['x', ...wp.names, ...bias.names];
  const inputs = [x, ...wp.tensors, ...bias.tensors];
  const key = `${w.kind}_${variant}_${w.bias ? 'bias' : 'nobias'}`;
  const uniforms = 'n : i32, inF : i32, outF : i32,';
  const values = [i32u(N), i32u(inF), i32u(outF)];
  const outputShape = [N, outF];

  let program;
  switch (variant) {
    case 'v1': {
      const WGX = 64;
      program = makeProgram({
        op: 'linear', variant: key, wgsl: [...includes, v1Wgsl].join('\n'), constants: wp.constants,
        variableNames: names, outputShape, workgroupSize: [WGX, 1, 1], dispatch: [groupsFor(N * outF, WGX), 1, 1],
        uniforms, size: true,
      });
      break;
    }
    case 'v2': {
      const { TN, TO, TK, RN, RO } = tiled;
      if (TK % 4 !== 0 || TN % RN !== 0 || TO % RO !== 0) throw new Error(`${where}: bad tile ${JSON.stringify(tiled)}`);
      const WG = (TN / RN) * (TO / RO);
      program = makeProgram({
        op: 'linear', variant: key, wgsl: [...includes, v2Wgsl].join('\n'),
        constants: { ...wp.constants, TN, TO, TK, RN, RO, WG },
        variableNames: names, outputShape, workgroupSize: [WG, 1, 1],
        dispatch: [groupsFor(N, TN) * groupsFor(outF, TO), 1, 1], uniforms,
      });
      break;
    }
    case 'v3': {
      const { RN, RO } = regblock;
      const WGX = 64;
      program = makeProgram({
        op: 'linear', variant: key, wgsl: [...includes, v3Wgsl].join('\n'), constants: { ...wp.constants, RN, RO },
        variableNames: names, outputShape, workgroupSize: [WGX, 1, 1],
        dispatch: [groupsFor(groupsFor(N, RN) * groupsFor(outF, RO), WGX), 1, 1], uniforms,
      });
      break;
    }
    case 'gemv': {
      const { WG, R } = gemv;
      if ((WG & (WG - 1)) !== 0) throw new Error(`${where}: gemv WG=${WG} must be a power of two`);
      program = makeProgram({
        op: 'linear', variant: key, wgsl: [...includes, gemvWgsl].join('\n'), constants: { ...wp.constants, WG, R },
        variableNames: names, outputShape, workgroupSize: [WG, 1, 1], dispatch: [N * groupsFor(outF, R), 1, 1], uniforms,
      });
      break;
    }
  }
  return runProgram(program, inputs, 'float32', values) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// Backward

/** dX kernel: RN rows x RK vec4 columns of dX per invocation. */
export interface DxConfig {
  RN: number;
  RK: number;
}
/** dW kernel: RO rows x RK vec4 columns of dW per invocation (and split of N). */
export interface DwConfig {
  RO: number;
  RK: number;
}
// Measured under SwiftShader on a shared, noisy machine (dY (128, 1536), W (1536, 576)):
// dX q8 RN=4 RK=4 took 2.0-4.4 s against 2.0-2.3 s for stock tf.matMul(dY, W_f32) (tfjs's
// non-transposed matmul is its fast path: 2-3x faster than the transposed one the forward
// beats), so dX through quantised W is NOT yet 2x stock there; RN in {1,2,4,8} x RK in
// {2,4,8} all did worse. dW RO=4 RK=2 took ~2.4 s against ~4.8 s for tf.matMul(dY, X, true).
// Retune both on a real GPU, where a workgroup-memory tile likely wins.
export const DEFAULT_DX: DxConfig = { RN: 4, RK: 4 };
export const DEFAULT_DW: DwConfig = { RO: 4, RK: 2 };

/**
 * How many splits of the N rows a reduction over N uses, given `blocks` independent outputs
 * per split: enough invocations to fill a GPU (~4096) while keeping >= 16 rows per split.
 * A function of the shapes only, so the summation order (and the result) is reproducible.
 */
export function reductionSplits(N: number, blocks: number): number {
  return Math.max(1, Math.min(Math.ceil(N / 16), Math.ceil(4096 / Math.max(1, blocks))));
}

/** A reshaped view of `t` that replaces it: the view shares the buffer, `t` itself is released. */
function reshapeOwned(t: tf.Tensor, shape: number[]): tf.Tensor {
  const v = t.reshape(shape);
  t.dispose();
  return v;
}

/** dInp (N, inF) = dOut (N, outF) W, for any storage kind; the weight is never expanded. */
export function linearBackwardInput(dOut: tf.Tensor2D, w: LinearWeight, cfg: DxConfig = DEFAULT_DX): tf.Tensor2D {
  const where = `linear backward dX (${w.kind})`;
  const [N, outF] = dOut.shape;
  if (outF !== w.outF) throw new Error(`${where}: dOut has ${outF} features, the weight has outF=${w.outF}`);
  checkLinearWeight(w, where);
  const { RN } = cfg;
  // A q4 column block must sit inside one scale group (the shader scales per block): halve RK
  // until 4 RK divides the group size (RK = 2 always does: groups are multiples of 8).
  let RK = cfg.RK;
  while (w.kind === 'q4' && RK > 1 && w.groupSize % (4 * RK) !== 0) RK = Math.floor(RK / 2);
  const wp = weightParts(w);
  const WGX = 64;
  const blocks = groupsFor(N, RN) * groupsFor(w.inF, 4 * RK);
  const program = makeProgram({
    op: 'linear_backward_dx', variant: w.kind, wgsl: [wp.wgsl, dxWgsl].join('\n'),
    constants: { ...wp.constants, RN, RK }, variableNames: ['dy', ...wp.names], outputShape: [N, w.inF],
    workgroupSize: [WGX, 1, 1], dispatch: [groupsFor(blocks, WGX), 1, 1], uniforms: 'n : i32, inF : i32, outF : i32,',
  });
  return runProgram(program, [dOut, ...wp.tensors], 'float32', [i32u(N), i32u(w.inF), i32u(outF)]) as tf.Tensor2D;
}

/**
 * Column sums of a (R, M) -> (M), deterministic (fixed split count and order); `splits`
 * defaults to reductionSplits. Used for dBias, dBeta and to add up partial gradients.
 */
export function columnSum(a: tf.Tensor2D, splits?: number): tf.Tensor1D {
  const [R, M] = a.shape;
  const S = Math.min(Math.max(1, splits ?? reductionSplits(R, groupsFor(M, 4))), Math.max(1, R));
  const rows = Math.ceil(R / S);
  const run = (t: tf.Tensor2D, s: number, r: number): tf.Tensor2D => {
    const program = makeProgram({
      op: 'linear_backward_colsum', variant: 'f32', wgsl: colsumWgsl, variableNames: ['a'], outputShape: [s, M],
      workgroupSize: [64, 1, 1], dispatch: [groupsFor(s * M, 64), 1, 1], uniforms: 'rows : i32, splits : i32,', size: true,
    });
    return runProgram(program, [t], 'float32', [i32u(r), i32u(s)]) as tf.Tensor2D;
  };
  const partial = run(a, S, rows); // (S, M)
  if (S === 1) return reshapeOwned(partial, [M]) as tf.Tensor1D;
  const total = run(partial, 1, S); // (1, M)
  partial.dispose();
  return reshapeOwned(total, [M]) as tf.Tensor1D;
}

/** dWeight (outF, inF) = dOut^T inp, for an f32 weight (quantised weights are frozen). */
export function linearBackwardWeight(dOut: tf.Tensor2D, inp: tf.Tensor2D, cfg: DwConfig = DEFAULT_DW, splits?: number): tf.Tensor2D {
  const [N, outF] = dOut.shape;
  const inF = inp.shape[1];
  if (inp.shape[0] !== N) throw new Error(`linear backward dW: dOut has ${N} rows, inp has ${inp.shape[0]}`);
  const { RO, RK } = cfg;
  const blocks = groupsFor(outF, RO) * groupsFor(inF, 4 * RK);
  const S = Math.min(Math.max(1, splits ?? reductionSplits(N, blocks)), Math.max(1, N));
  const rows = Math.ceil(N / S);
  const WGX = 64;
  const program = makeProgram({
    op: 'linear_backward_dw', variant: 'f32', wgsl: [xWgsl, dwWgsl].join('\n'), constants: { RO, RK },
    variableNames: ['x', 'dy'], outputShape: [S, outF * inF], workgroupSize: [WGX, 1, 1],
    dispatch: [groupsFor(S * blocks, WGX), 1, 1], uniforms: 'n : i32, inF : i32, outF : i32, rows : i32, splits : i32,',
  });
  const partial = runProgram(program, [inp, dOut], 'float32', [i32u(N), i32u(inF), i32u(outF), i32u(rows), i32u(S)]) as tf.Tensor2D; // (S, outF*inF)
  if (S === 1) return reshapeOwned(partial, [outF, inF]) as tf.Tensor2D;
  const total = columnSum(partial, 1); // (outF*inF)
  partial.dispose();
  return reshapeOwned(total, [outF, inF]) as tf.Tensor2D;
}

/** dBias (outF) = sum over rows of dOut (N, outF). */
export function linearBackwardBias(dOut: tf.Tensor2D): tf.Tensor1D {
  return columnSum(dOut);
}
