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
// Choices measured under SwiftShader (the CPU adapter of the test machines; numbers noisy, the
// machine was shared): workgroup barriers are costly there (they suspend every invocation),
// so the shared-memory v2 lost to the barrier-free v3 (x(320,576) W(1536,576) q8: v2 1.6x,
// v3 RN=4 RO=8 2.9x faster than stock f32 tf.matMul), and the GEMV wants a tiny workgroup
// (WG=4, so one SIMD group, R=8 rows) rather than a wide tree reduction (WG=64: 5x slower).
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
export const DEFAULT_GEMV: GemvConfig = { WG: 4, R: 8 };
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
