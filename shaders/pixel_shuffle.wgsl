// Idefics3 pixel shuffle forward: x (B, P, C) with P = side^2 -> y (B, P/s^2, C*s^2).
// Output token (h2, w2) concatenates the s x s block of patches (h2*s + dh, w2*s + dw) in
// row-major (dh, dw) order, each contributing its C channels: the closed form of
// transformers' view/permute/reshape sequence (the CPU twin, src/engine/cpu/pixel_shuffle.ts,
// replays that sequence literally).
//
// Parallelisation: a pure gather, one thread per output {{VTYPE}} (vec4 when C is a multiple
// of 4: a run of C channels is contiguous on both sides). Backward is the inverse scatter.
//
// Inputs: x (B, P, C). Constants: S scale factor, VEC components per element.
// Uniforms: side = sqrt(P). uniforms.size = number of output {{VTYPE}} elements.

const S: i32 = {{S}};
const VEC: i32 = {{VEC}};

fn main(index: i32) {
  if (index >= uniforms.size) {
    return;
  }
  let side = uniforms.side;
  let P = uniforms.xShape.y;
  let cv = uniforms.xShape.z / VEC; // channels per patch, in elements of VEC
  let tokenLen = cv * S * S; // output channels, in elements of VEC
  let outSide = side / S;
  let k = index % tokenLen;
  let n = (index / tokenLen) % (P / (S * S));
  let b = index / (tokenLen * (P / (S * S)));
  let h = (n / outSide) * S + k / (cv * S);
  let w = (n % outSide) * S + (k % (cv * S)) / cv;
  let c = k % cv;
  result[index] = x[(b * P + h * side + w) * cv + c];
}
