// Activation loader shared by the linear kernels. Binding: x (N, inF) f32. Uniforms used: inF.
// loadX4(n, k): x[n, k..k+3] for k a multiple of 4, zero past inF (so padded weight words,
// and the next row of x, contribute nothing).

fn loadX4(n: i32, k: i32) -> vec4<f32> {
  let inF = uniforms.inF;
  let base = n * inF + k;
  if (k + 4 <= inF) {
    return vec4<f32>(x[base], x[base + 1], x[base + 2], x[base + 3]);
  }
  var v = vec4<f32>(0.0);
  for (var i = 0; i < 4; i++) {
    if (k + i < inF) {
      v[i] = x[base + i];
    }
  }
  return v;
}
