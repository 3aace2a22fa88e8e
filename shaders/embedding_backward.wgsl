// Embedding backward, table gradient (f32 tables only; quantised tables are frozen):
// dTable[v, c] = sum of dOut[n, c] over the positions n with ids[n] == v, in order of n.
// CPU twin: embeddingBackward in src/engine/cpu/embedding.ts.
//
// Parallelisation: a row loop instead of a scatter with atomics (WGSL has no float atomics,
// and a compare-and-swap add would make the sum order, so the result, depend on scheduling):
// one invocation per (table row v, four channels), scanning all N ids. Deterministic, but
// O(V * N * C / 4) work: fine for the small trainable tables of tests and adapters, far too
// slow for a 49k-row vocabulary with thousands of tokens (future work: sort ids, segment sum).
// Bindings: ids (N) i32, dy (N, C) f32. Uniforms: n (N), inF (C), outF (V), chunks (V * ceil(C/4)).

fn main(index: i32) {
  if (index >= uniforms.chunks) {
    return;
  }
  let c4 = (uniforms.inF + 3) / 4;
  let v = index / c4;
  let k = (index - v * c4) * 4;
  let lanes = min(4, uniforms.inF - k);
  var acc = vec4<f32>(0.0);
  for (var n = 0; n < uniforms.n; n++) {
    if (ids[n] == v) {
      for (var i = 0; i < lanes; i++) {
        acc[i] += dy[n * uniforms.inF + k + i];
      }
    }
  }
  for (var i = 0; i < lanes; i++) {
    setOutputAtIndex(v * uniforms.inF + k + i, acc[i]);
  }
}
