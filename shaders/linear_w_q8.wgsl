// Weight decoder for q8 linear weights, included before a linear_* or embedding_* kernel.
// Bindings: q (outF, ceil(inF/4)) i32, four int8 per word, element k in byte k % 4 (little
// end first); scale (outF) f32, w = q * scale[o]. Uniforms used: inF.
// loadW4(o, k): W[o, k..k+3] for k a multiple of 4. Padding bytes are 0, so no mask is needed.
// Bytes are sign-extended with shifts (exact), not unpack4x8snorm (a /127 then *127 round trip).

fn loadW4(o: i32, k: i32) -> vec4<f32> {
  let words = (uniforms.inF + 3) / 4;
  let p = q[o * words + k / 4];
  // Move byte i to the top, then arithmetic-shift it back down.
  let b = vec4<i32>(p << 24u, p << 16u, p << 8u, p) >> vec4<u32>(24u);
  return vec4<f32>(b) * scale[o];
}
