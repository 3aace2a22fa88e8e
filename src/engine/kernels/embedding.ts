// Embedding kernel: gathers rows of an f32, q8 or q4 table (an EmbeddingWeight, stored like a
// linear weight with outF = V rows of inF = C values), decoding quantised rows on the fly with
// the linear weight decoders. CPU twin: cpu/embedding.ts. Shader: shaders/embedding_gather.wgsl.
// Backward (embeddingBackward, shaders/embedding_backward.wgsl): the table gradient of an f32
// table by a deterministic row loop; quantised tables are frozen (no gradient), and ids are
// integers (no gradient either).
//
// N ids, V vocab, C channels.
import type * as tf from '@tensorflow/tfjs';
import type { EmbeddingWeight } from '../ops/ops';
import { checkLinearWeight } from './linear';
import { groupsFor, i32u, makeProgram, runProgram, type Constant } from './program';
import wF32Wgsl from '../../../shaders/linear_w_f32.wgsl?raw';
import wQ8Wgsl from '../../../shaders/linear_w_q8.wgsl?raw';
import wQ4Wgsl from '../../../shaders/linear_w_q4.wgsl?raw';
import gatherWgsl from '../../../shaders/embedding_gather.wgsl?raw';
import backwardWgsl from '../../../shaders/embedding_backward.wgsl?raw';

/** ids (N) int32 -> (N, C); ids outside [0, V) give zero rows. */
export function embeddingKernel(ids: tf.Tensor1D, table: EmbeddingWeight): tf.Tensor2D {
  const where = `embedding(${table.kind})`;
  if (ids.dtype !== 'int32') throw new Error(`${where}: ids must be int32, got ${ids.dtype}`);
  checkLinearWeight(table, where);
  const N = ids.shape[0];
  const C = table.inF;
  const V = table.outF;
  let decoder: string;
  let names: string[];
  let tensors: tf.Tensor[];
  let constants: Record<string, Constant> = {};
  switch (table.kind) {
    case 'f32':
      [decoder, names, tensors] = [wF32Wgsl, ['w'], [table.w]];
      break;
    case 'q8':
      [decoder, names, tensors] = [wQ8Wgsl, ['q', 'scale'], [table.q, table.scale]];
      break;
    case 'q4':
      [decoder, names, tensors] = [wQ4Wgsl, ['q', 'scale'], [table.q, table.scale]];
      constants = { GS: table.groupSize };
      break;
  }
  const chunks = N * Math.ceil(C / 4);
  const WGX = 64;
  const program = makeProgram({
    op: 'embedding', variant: table.kind, wgsl: [decoder, gatherWgsl].join('\n'), constants,
    variableNames: ['ids', ...names], outputShape: [N, C], workgroupSize: [WGX, 1, 1],
    dispatch: [groupsFor(chunks, WGX), 1, 1], uniforms: 'n : i32, inF : i32, outF : i32, chunks : i32,',
  });
  return runProgram(program, [ids, ...tensors], 'float32', [i32u(N), i32u(C), i32u(V), i32u(chunks)]) as tf.Tensor2D;
}

/**
 * dTable (V, C) of an f32 table: rows of dOut (N, C) added into the rows their ids name, in
 * order of n (no atomics). O(V * N * C): meant for small tables (see the shader header).
 */
export function embeddingBackward(dOut: tf.Tensor2D, ids: tf.Tensor1D, V: number): tf.Tensor2D {
  const [N, C] = dOut.shape;
  if (ids.dtype !== 'int32' || ids.shape[0] !== N) {
    throw new Error(`embedding backward: ids must be int32 (${N}), got ${ids.dtype} ${JSON.stringify(ids.shape)}`);
  }
  const chunks = V * Math.ceil(C / 4);
  const WGX = 64;
  const program = makeProgram({
    op: 'embedding_backward', variant: 'f32', wgsl: backwardWgsl, variableNames: ['ids', 'dy'], outputShape: [V, C],
    workgroupSize: [WGX, 1, 1], dispatch: [groupsFor(chunks, WGX), 1, 1],
    uniforms: 'n : i32, inF : i32, outF : i32, chunks : i32,',
  });
  return runProgram(program, [ids, dOut], 'float32', [i32u(N), i32u(C), i32u(V), i32u(chunks)]) as tf.Tensor2D;
}
