// Weight decoder for q4 linear weights, included before a linear_* or embedding_* kernel.
// Bindings: q (outF, ceil(inF/8)) i32, eight 4-bit values per word, nibble k % 8 of word k/8
// from the least significant end; scale (outF, ceil(inF/GS)) f32; w = (nibble - 8) * scale.
// Constant GS: the group size along inF (a multiple of 8, so a word never straddles groups).
// Uniforms used: inF.
//   wRaw4(o, k):  W[o, k..k+3] unscaled (nibble - 8) as f32, k a multiple of 4;
//   wScale(o, k): the scale of k's group; W_SPAN = GS inputs share it;
//   loadW4(o, k): wRaw4 * wScale.
// Padding nibbles are 8 (value 0), so no mask is needed.

const W_SPAN = {{GS}};

fn wRaw4(o: i32, k: i32) -> vec4<f32> {
  let words = (uniforms.inF + 7) / 8;
  let p = bitcast<u32>(q[o * words + k / 8]) >> u32((k % 8) * 4);
  let nib = (vec4<u32>(p) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  return vec4<f32>(nib) - 8.0;
}

fn wScale(o: i32, k: i32) -> f32 {
  let groups = (uniforms.inF + {{GS}} - 1) / {{GS}};
  return scale[o * groups + k / {{GS}}];
}

fn loadW4(o: i32, k: i32) -> vec4<f32> {
  return wRaw4(o, k) * wScale(o, k);
}
