// Weight decoder for f32 linear weights, included before a linear_* or embedding_* kernel.
// Binding: w (outF, inF) float32, HF layout. Uniforms used: inF.
//   wRaw4(o, k) = loadW4(o, k): W[o, k..k+3] for k a multiple of 4, zero past inF (the next
//   row follows in memory, so the tail must be masked); wScale is 1 over the whole row
//   (W_SPAN), the same interface as the quantised decoders.

const W_SPAN = 1073741824;

fn loadW4(o: i32, k: i32) -> vec4<f32> {
  let inF = uniforms.inF;
  let base = o * inF + k;
  if (k + 4 <= inF) {
    return vec4<f32>(w[base], w[base + 1], w[base + 2], w[base + 3]);
  }
  var v = vec4<f32>(0.0);
  for (var i = 0; i < 4; i++) {
    if (k + i < inF) {
      v[i] = w[base + i];
    }
  }
  return v;
}

fn wRaw4(o: i32, k: i32) -> vec4<f32> {
  return loadW4(o, k);
}

fn wScale(o: i32, k: i32) -> f32 {
  return 1.0;
}
