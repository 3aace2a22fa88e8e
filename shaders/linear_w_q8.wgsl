// Weight decoder for q8 linear weights, included before a linear_* or embedding_* kernel.
// Bindings: q (outF, ceil(inF/4)) i32, four int8 per word, element k in byte k % 4 (little
// end first); scale (outF) f32, w = q * scale[o]. Uniforms used: inF.
//   wRaw4(o, k):  the four int8 values of W[o, k..k+3] as f32 (k a multiple of 4), unscaled;
//   wScale(o, k): their scale; W_SPAN: how many consecutive k share one scale (the whole row),
//                 so hot loops multiply by the scale once per span, not once per weight;
//   loadW4(o, k): wRaw4 * wScale.
// Padding bytes are 0, so no mask is needed. wRaw4 is unpack4x8snorm (q / 127, one builtin:
// measured ~25% faster in the GEMV under SwiftShader than sign-extending with shifts), so the
// scale carries the 127 back; the round trip costs about one f32 ulp. quantizeQ8 never
// emits -128 (which unpack4x8snorm would clamp to -127).

const W_SPAN = 1073741824;

fn wRaw4(o: i32, k: i32) -> vec4<f32> {
  let words = (uniforms.inF + 3) / 4;
  return unpack4x8snorm(bitcast<u32>(q[o * words + k / 4]));
}

fn wScale(o: i32, k: i32) -> f32 {
  return scale[o] * 127.0;
}

fn loadW4(o: i32, k: i32) -> vec4<f32> {
  return wRaw4(o, k) * wScale(o, k);
}
