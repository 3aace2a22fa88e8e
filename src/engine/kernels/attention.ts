// Attention as WGSL kernels. Forward: shaders/attention.wgsl (tiled online softmax, GQA heads
// sharing one K/V tile) and, for decode-shaped calls, shaders/attention_combine.wgsl merging
// key-split partials (flash-decoding); on request it also saves the per-row log-sum-exp.
// Backward (FlashAttention-2 style, recomputing probabilities from that lse):
// shaders/attention_backward_delta.wgsl (D = rowsum(dOut * out)), attention_backward_dq.wgsl
// (dQ, looping over keys) and attention_backward_dkv.wgsl (dK, dV, looping over queries).
// `attentionWithGrad` joins them through tf.customGrad. CPU twins: src/engine/cpu/attention.ts.
//
// B batch, T queries, S keys, NH heads, NKV kv heads, HS head size, G = NH / NKV.
import * as tf from '@tensorflow/tfjs';
import type { AttentionOptions } from '../ops/ops';
import wgsl from '../../../shaders/attention.wgsl?raw';
import combineWgsl from '../../../shaders/attention_combine.wgsl?raw';
import deltaWgsl from '../../../shaders/attention_backward_delta.wgsl?raw';
import dqWgsl from '../../../shaders/attention_backward_dq.wgsl?raw';
import dkvWgsl from '../../../shaders/attention_backward_dkv.wgsl?raw';
import { f32u, groupsFor, i32u, makeProgram, runProgram } from './program';

const WG = 64;
/** Largest head size whose tiles fit the 16 KiB of workgroup memory WebGPU guarantees. */
const MAX_HEAD_DIM = 256;
/** Workgroups below which a call counts as decode-shaped and the key range gets split. */
const TARGET_WORKGROUPS = 128;

export interface AttentionTiling {
  /** Query rows (flattened (t, head-in-group)) per workgroup. */
  BQ: number;
  /** Keys per tile. */
  BK: number;
  /** Workgroups sharing one row block's key range (1 = no split, no combine pass). */
  keySplits: number;
}

function pow2Floor(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

function pow2Ceil(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/**
 * Tile sizes for a call. The Q tile is kept at <= 1024 floats and the K/V tile at <= ~2048,
 * so workgroup memory stays under 16 KiB for every HS <= 256. The key range is split only
 * when the row blocks alone would leave most of a GPU idle (decode: T*G rows, one block).
 */
export function attentionTiling(B: number, T: number, S: number, NH: number, NKV: number, HS: number): AttentionTiling {
  const G = NH / NKV;
  const BK = Math.min(64, Math.max(8, pow2Floor(2048 / HS)));
  const BQ = Math.min(16, pow2Ceil(T * G), Math.max(1, pow2Floor(1024 / HS)));
  const blocks = B * NKV * Math.ceil((T * G) / BQ);
  let keySplits = 1;
  if (blocks < TARGET_WORKGROUPS) {
    // At least two key tiles per split, so a split's fixed cost (Q load, partial write)
    // stays small beside its work.
    keySplits = Math.max(1, Math.min(Math.floor(TARGET_WORKGROUPS / blocks), Math.floor(S / (2 * BK))));
  }
  return { BQ, BK, keySplits };
}

/**
 * q (B, T, NH*HS), k/v (B, S, NKV*HS) -> (B, T, NH*HS). `tiling` overrides the automatic
 * choice (tests use it to force the split path on small shapes).
 */
export function attentionForward(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  opts: AttentionOptions,
  tiling?: Partial<AttentionTiling>,
): tf.Tensor3D {
  return runForward(q, k, v, opts, tiling, false) as tf.Tensor3D;
}

/**
 * The forward plus what the backward needs: out (B, T, NH*HS) and lse (B, NH, T), the
 * log-sum-exp of each row's scaled visible scores (-Infinity for a row that sees no key).
 * The kernel writes both into one buffer (a tfjs program has one output), split here by two
 * slices: O(B*T*NH*HS) copying, small beside the attention itself.
 */
export function attentionForwardWithLse(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  opts: AttentionOptions,
  tiling?: Partial<AttentionTiling>,
): { out: tf.Tensor3D; lse: tf.Tensor3D } {
  const [B, T] = q.shape;
  const NH = opts.nHeads;
  const n = B * T * NH * opts.headDim;
  const packed = runForward(q, k, v, opts, tiling, true); // (B*T*NH*HS + B*NH*T)
  return tf.tidy(() => {
    const out = tf.slice(packed, [0], [n]).reshape([B, T, NH * opts.headDim]) as tf.Tensor3D; // (B, T, NH*HS)
    const lse = tf.slice(packed, [n], [B * NH * T]).reshape([B, NH, T]) as tf.Tensor3D; // (B, NH, T)
    packed.dispose();
    return { out, lse };
  });
}

/** Checks shapes and dtypes of one attention call; throws naming the problem. */
function checkInputs(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: AttentionOptions, where: string): void {
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, causal, keyMask } = opts;
  const [B, T] = q.shape;
  const S = k.shape[1];
  if (NH % NKV !== 0) throw new Error(`${where}: nHeads ${NH} is not a multiple of nKvHeads ${NKV}`);
  if (HS > MAX_HEAD_DIM) throw new Error(`${where}: headDim ${HS} exceeds the supported ${MAX_HEAD_DIM}`);
  if (q.shape[2] !== NH * HS) throw new Error(`${where}: q has ${q.shape[2]} channels, expected NH*HS = ${NH * HS}`);
  for (const [name, t] of [['k', k], ['v', v]] as const) {
    if (t.shape[0] !== B || t.shape[1] !== S || t.shape[2] !== NKV * HS) {
      throw new Error(`${where}: ${name} has shape ${JSON.stringify(t.shape)}, expected (${B}, ${S}, ${NKV * HS})`);
    }
  }
  if (causal && T > S) throw new Error(`${where}: causal attention needs S >= T (got T=${T}, S=${S})`);
  if (keyMask && (keyMask.dtype !== 'float32' || keyMask.shape[0] !== B || keyMask.shape[1] !== S)) {
    throw new Error(`${where}: keyMask is ${keyMask.dtype} ${JSON.stringify(keyMask.shape)}, expected float32 (${B}, ${S})`);
  }
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.dtype !== 'float32') throw new Error(`${where}: ${name} is ${t.dtype}, expected float32`);
  }
}

/** Forward; with `saveLse` the flat (B*T*NH*HS + B*NH*T) buffer [out, lse], else out (B, T, NH*HS). */
function runForward(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  opts: AttentionOptions,
  tiling: Partial<AttentionTiling> | undefined,
  saveLse: boolean,
): tf.Tensor {
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, causal, scale, keyMask } = opts;
  const [B, T] = q.shape;
  const S = k.shape[1];
  checkInputs(q, k, v, opts, 'kernels/attention.ts');
  const G = NH / NKV;
  const lseTail = saveLse ? B * NH * T : 0;
  const auto = attentionTiling(B, T, S, NH, NKV, HS);
  const { BQ, BK, keySplits } = { ...auto, ...tiling };
  const nQBlocks = Math.ceil((T * G) / BQ);
  // Keys per split, a whole number of tiles so no tile straddles two splits.
  const splitLen = Math.ceil(Math.ceil(S / keySplits) / BK) * BK;
  const constants = {
    HS,
    BQ,
    BK,
    WG,
    GROUP: G,
    PARTIAL: keySplits > 1 ? 'true' : 'false',
    CAUSAL: causal ? 'true' : 'false',
    HAS_MASK: keyMask ? 'true' : 'false',
    // Only the unsplit pass writes lse itself; with splits the combine pass does.
    SAVE_LSE: saveLse && keySplits === 1 ? 'true' : 'false',
  };
  let outShape = keySplits === 1 ? [B, T, NH * HS] : [B * NKV * nQBlocks * keySplits * BQ, HS + 2];
  if (saveLse && keySplits === 1) outShape = [B * T * NH * HS + lseTail];
  const program = makeProgram({
    op: 'attention',
    variant: keySplits === 1 ? 'forward' : 'forward_partial',
    wgsl,
    constants,
    variableNames: ['q', 'k', 'v', 'keyMask'],
    outputShape: outShape,
    workgroupSize: [WG, 1, 1],
    dispatch: [B * NKV * nQBlocks * keySplits, 1, 1],
    uniforms: 'T : i32, S : i32, NH : i32, NKV : i32, nQBlocks : i32, keySplits : i32, splitLen : i32, scale : f32,',
  });
  // Without a mask the shader never reads `keyMask`; binding q again there (read-only, legal
  // in WebGPU) avoids allocating a dummy tensor per call.
  const inputs = [q, k, v, keyMask ?? q];
  const uniforms = [i32u(T), i32u(S), i32u(NH), i32u(NKV), i32u(nQBlocks), i32u(keySplits), i32u(splitLen), f32u(scale)];
  const first = runProgram(program, inputs, 'float32', uniforms);
  if (keySplits === 1) return first;

  const combine = makeProgram({
    op: 'attention',
    variant: 'combine',
    wgsl: combineWgsl,
    constants: { HS, BQ, GROUP: G, SAVE_LSE: saveLse ? 'true' : 'false' },
    variableNames: ['partial'],
    outputShape: saveLse ? [B * T * NH * HS + lseTail] : [B, T, NH * HS],
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(B * T * NH * HS, WG), 1, 1],
    size: true,
    uniforms: 'B : i32, T : i32, NH : i32, NKV : i32, nQBlocks : i32, keySplits : i32,',
  });
  const combineUniforms = [i32u(B), i32u(T), i32u(NH), i32u(NKV), i32u(nQBlocks), i32u(keySplits)];
  const out = runProgram(combine, [first], 'float32', combineUniforms);
  first.dispose();
  return out;
}

export interface AttentionBackwardTiling {
  /** Query rows (flattened (t, head-in-group)) per tile, in both backward kernels. */
  BQ: number;
  /** Keys per tile. */
  BK: number;
}

/** Workgroup floats of attention_backward_dkv.wgsl (the dq kernel needs one P tile less). */
function backwardTileFloats(BQ: number, BK: number, HS: number): number {
  return 2 * BQ * HS + 2 * BK * (HS + 1) + 2 * BQ * (BK + 1) + 2 * BQ;
}

/**
 * Tile sizes of the backward kernels: BQ rows from the head size, then the largest BK whose
 * tiles (Q, dOut, K, V, P, dS) fit the 16 KiB (4096 floats) of workgroup memory WebGPU
 * guarantees.
 */
export function attentionBackwardTiling(T: number, NH: number, NKV: number, HS: number): AttentionBackwardTiling {
  const G = NH / NKV;
  const BQ = Math.min(16, pow2Ceil(T * G), Math.max(2, pow2Floor(512 / HS)));
  let BK = 32;
  while (BK > 2 && backwardTileFloats(BQ, BK, HS) > 4096) BK /= 2;
  return { BQ, BK };
}

/**
 * Gradients of attention with respect to q, k and v, given the upstream gradient dOut and the
 * forward's out and lse (attentionForwardWithLse). Three passes: D = rowsum(dOut * out), dq
 * (parallel over query blocks), dk/dv (parallel over key blocks; GQA heads summed inside).
 * Deterministic and without a (T, S) buffer. `tiling` overrides the automatic choice (tests).
 */
export function attentionBackward(
  dOut: tf.Tensor3D, // (B, T, NH*HS)
  out: tf.Tensor3D, // (B, T, NH*HS)
  lse: tf.Tensor3D, // (B, NH, T)
  q: tf.Tensor3D, // (B, T, NH*HS)
  k: tf.Tensor3D, // (B, S, NKV*HS)
  v: tf.Tensor3D, // (B, S, NKV*HS)
  opts: AttentionOptions,
  tiling?: Partial<AttentionBackwardTiling>,
): { dq: tf.Tensor3D; dk: tf.Tensor3D; dv: tf.Tensor3D } {
  const where = 'kernels/attention.ts (backward)';
  checkInputs(q, k, v, opts, where);
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, causal, scale, keyMask } = opts;
  const [B, T] = q.shape;
  const S = k.shape[1];
  for (const [name, t] of [['dOut', dOut], ['out', out]] as const) {
    if (t.dtype !== 'float32' || t.shape.join() !== q.shape.join()) {
      throw new Error(`${where}: ${name} is ${t.dtype} ${JSON.stringify(t.shape)}, expected float32 ${JSON.stringify(q.shape)}`);
    }
  }
  if (lse.dtype !== 'float32' || lse.shape.join() !== [B, NH, T].join()) {
    throw new Error(`${where}: lse is ${lse.dtype} ${JSON.stringify(lse.shape)}, expected float32 (${B}, ${NH}, ${T})`);
  }
  const G = NH / NKV;
  const { BQ, BK } = { ...attentionBackwardTiling(T, NH, NKV, HS), ...tiling };
  if (backwardTileFloats(BQ, BK, HS) > 4096) {
    throw new Error(`${where}: tiles BQ=${BQ}, BK=${BK} at headDim ${HS} exceed 16 KiB of workgroup memory`);
  }
  const nQBlocks = Math.ceil((T * G) / BQ);
  const nKBlocks = Math.ceil(S / BK);

  const deltaProgram = makeProgram({
    op: 'attention_backward',
    variant: 'delta',
    wgsl: deltaWgsl,
    constants: { HS },
    variableNames: ['dOut', 'o'],
    outputShape: [B, NH, T],
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(B * NH * T, WG), 1, 1],
    size: true,
  });
  const delta = runProgram(deltaProgram, [dOut, out], 'float32'); // (B, NH, T)

  const constants = {
    HS,
    BQ,
    BK,
    WG,
    GROUP: G,
    CAUSAL: causal ? 'true' : 'false',
    HAS_MASK: keyMask ? 'true' : 'false',
  };
  // Without a mask the kernels never read `keyMask`; q is bound there instead (see forward).
  const inputs = [q, k, v, dOut, lse, delta, keyMask ?? q];
  const variableNames = ['q', 'k', 'v', 'dOut', 'lse', 'delta', 'keyMask'];
  const dqProgram = makeProgram({
    op: 'attention_backward',
    variant: 'dq',
    wgsl: dqWgsl,
    constants,
    variableNames,
    outputShape: [B, T, NH * HS],
    workgroupSize: [WG, 1, 1],
    dispatch: [B * NKV * nQBlocks, 1, 1],
    uniforms: 'T : i32, S : i32, NH : i32, NKV : i32, nQBlocks : i32, scale : f32,',
  });
  const dq = runProgram(dqProgram, inputs, 'float32', [i32u(T), i32u(S), i32u(NH), i32u(NKV), i32u(nQBlocks), f32u(scale)]);

  const dkvProgram = makeProgram({
    op: 'attention_backward',
    variant: 'dkv',
    wgsl: dkvWgsl,
    constants,
    variableNames,
    outputShape: [2 * B * S * NKV * HS],
    workgroupSize: [WG, 1, 1],
    dispatch: [B * NKV * nKBlocks, 1, 1],
    uniforms: 'T : i32, S : i32, NH : i32, NKV : i32, nQBlocks : i32, nKBlocks : i32, scale : f32,',
  });
  const dkvUniforms = [i32u(T), i32u(S), i32u(NH), i32u(NKV), i32u(nQBlocks), i32u(nKBlocks), f32u(scale)];
  const dkv = runProgram(dkvProgram, inputs, 'float32', dkvUniforms); // (2*B*S*NKV*HS): dk, dv
  delta.dispose();
  const n = B * S * NKV * HS;
  return tf.tidy(() => {
    const dk = tf.slice(dkv, [0], [n]).reshape([B, S, NKV * HS]) as tf.Tensor3D; // (B, S, NKV*HS)
    const dv = tf.slice(dkv, [n], [n]).reshape([B, S, NKV * HS]) as tf.Tensor3D; // (B, S, NKV*HS)
    dkv.dispose();
    return { dq: dq as tf.Tensor3D, dk, dv };
  });
}

/**
 * Attention that tfjs autodiff can differentiate: the custom kernels wrapped in tf.customGrad,
 * gradients to q, k and v from attentionBackward. When no gradient tape is recording
 * (inference, evaluation) it is plain attentionForward, so decoding pays nothing for the lse.
 * opts.keyMask is not differentiated; it is saved with the other tensors, so it may be disposed after the forward.
 */
export function attentionWithGrad(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: AttentionOptions): tf.Tensor3D {
  if (!tf.engine().isTapeOn()) return attentionForward(q, k, v, opts);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qq, kk, vv] = args as tf.Tensor3D[];
    const save = args[3] as tf.GradSaveFunc;
    const { out, lse } = attentionForwardWithLse(qq, kk, vv, opts);
    // Saved clones outlive the forward's tidy; tfjs disposes them after backprop. The key mask
    // is saved too: the model builds it inside its forward tidy, which ends before backward.
    save(opts.keyMask ? [qq, kk, vv, out, lse, opts.keyMask] : [qq, kk, vv, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, sOut, sLse, sMask] = saved as tf.Tensor3D[];
        const bwdOpts = sMask ? { ...opts, keyMask: sMask as unknown as tf.Tensor2D } : opts;
        const { dq, dk, dv } = attentionBackward(dy as tf.Tensor3D, sOut, sLse, sq, sk, sv, bwdOpts);
        return [dq, dk, dv];
      },
    };
  });
  return op(q, k, v) as tf.Tensor3D;
}
