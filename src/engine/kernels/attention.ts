// Attention forward as WGSL kernels: shaders/attention.wgsl (tiled online softmax, GQA heads
// sharing one K/V tile) and, for decode-shaped calls, shaders/attention_combine.wgsl merging
// key-split partials (flash-decoding). CPU twin: src/engine/cpu/attention.ts.
// Forward only; `attentionBackward` will sit beside it (it needs the per-row logsumexp).
//
// B batch, T queries, S keys, NH heads, NKV kv heads, HS head size, G = NH / NKV.
import type * as tf from '@tensorflow/tfjs';
import type { AttentionOptions } from '../ops/ops';
import wgsl from '../../../shaders/attention.wgsl?raw';
import combineWgsl from '../../../shaders/attention_combine.wgsl?raw';
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
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, causal, scale, keyMask } = opts;
  const [B, T] = q.shape;
  const S = k.shape[1];
  const where = 'kernels/attention.ts';
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
  const G = NH / NKV;
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
  };
  const outShape = keySplits === 1 ? [B, T, NH * HS] : [B * NKV * nQBlocks * keySplits * BQ, HS + 2];
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
  if (keySplits === 1) return first as tf.Tensor3D;

  const combine = makeProgram({
    op: 'attention',
    variant: 'combine',
    wgsl: combineWgsl,
    constants: { HS, BQ, GROUP: G },
    variableNames: ['partial'],
    outputShape: [B, T, NH * HS],
    workgroupSize: [WG, 1, 1],
    dispatch: [groupsFor(B * T * NH * HS, WG), 1, 1],
    size: true,
    uniforms: 'T : i32, NH : i32, NKV : i32, nQBlocks : i32, keySplits : i32,',
  });
  const out = runProgram(combine, [first], 'float32', [i32u(T), i32u(NH), i32u(NKV), i32u(nQBlocks), i32u(keySplits)]);
  first.dispose();
  return out as tf.Tensor3D;
}
