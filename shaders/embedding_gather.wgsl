// Embedding gather: out[n, c] = table[ids[n], c] for f32, q8 and q4 tables (a table is stored
// like a linear weight with outF = V rows of inF = C values). One invocation per four output
// values; quantised rows are decoded on the fly, so the table is never expanded.
// Needs: a linear_w_* decoder. Bindings: ids (N) i32, then the decoder's. An id outside
// [0, V) yields a zero row (a shader cannot throw; the op checks ids where it can).
// Uniforms: n (N), inF (C), outF (V), chunks (N * ceil(C/4)).

fn main(index: i32) {
  if (index >= uniforms.chunks) {
    return;
  }
  let c4 = (uniforms.inF + 3) / 4;
  let n = index / c4;
  let k = (index - n * c4) * 4;
  let id = ids[n];
  var v = vec4<f32>(0.0);
  if (id >= 0 && id < uniforms.outF) {
    v = loadW4(id, k);
  }
  for (var i = 0; i < 4; i++) {
    if (k + i < uniforms.inF) {
      setOutputAtIndex(n * uniforms.inF + k + i, v[i]);
    }
  }
}
