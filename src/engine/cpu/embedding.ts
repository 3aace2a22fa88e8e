// Embedding CPU twin: the reference for shaders/embedding_gather.wgsl. Gathers rows of an
// embedding table stored like a linear weight (outF = V rows of inF = C values), decoding
// quantised rows with load/quantize.ts.
//
// N ids, V vocab (rows), C channels.
import { hostWeightF32, type HostLinearWeight } from './linear';

/** out[n, c] = table[ids[n], c]; an id outside [0, V) is an error naming it. */
export function embeddingForward(
  out: Float32Array, // (N, C)
  ids: Int32Array, // (N)
  table: HostLinearWeight, // (V, C)
): void {
  const V = table.outF;
  const C = table.inF;
  if (out.length !== ids.length * C) throw new Error(`embeddingForward: out has ${out.length} values, expected N*C = ${ids.length}*${C}`);
  const w = hostWeightF32(table); // (V, C)
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`embeddingForward: id ${id} at position ${n} is outside the table's ${V} rows`);
    out.set(w.subarray(id * C, (id + 1) * C), n * C);
  }
}

/**
 * Backward of embeddingForward for an f32 table: dTable[v, :] = sum of dOut[n, :] over the
 * n with ids[n] == v, added in order of n (f64 accumulation). Written, not accumulated.
 */
export function embeddingBackward(
  dTable: Float32Array, // (V, C)
  dOut: Float32Array, // (N, C)
  ids: Int32Array, // (N)
  V: number,
  C: number,
): void {
  const acc = new Float64Array(V * C);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`embeddingBackward: id ${id} at position ${n} is outside the table's ${V} rows`);
    for (let c = 0; c < C; c++) acc[id * C + c] += dOut[n * C + c];
  }
  dTable.set(acc);
}
