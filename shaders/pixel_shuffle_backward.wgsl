// Idefics3 pixel shuffle backward: the inverse permutation of shaders/pixel_shuffle.wgsl.
// dx (B, P, C) gathers from dy (B, P/s^2, C*s^2): patch (h, w) channel c came from output
// token n = (h/S) * (side/S) + w/S at channel k = ((h%S) * S + w%S) * C + c. A gather, not a
// scatter, so every element is written exactly once with no atomics.
// CPU twin: pixelShuffleBackward in src/engine/cpu/pixel_shuffle.ts.
//
// Parallelisation: one thread per input {{VTYPE}} (vec4 when C is a multiple of 4).
// Inputs: dy (B, P/s^2, C*s^2). Constants: S, VEC. Uniforms: side = sqrt(P), C.
// uniforms.size = number of dx {{VTYPE}} elements.

const S: i32 = {{S}};
const VEC: i32 = {{VEC}};

fn main(index: i32) {
  if (index >= uniforms.size) {
    return;
  }
  let side = uniforms.side;
  let P = side * side;
  let cv = uniforms.C / VEC; // channels per patch, in elements of VEC
  let c = index % cv;
  let p = (index / cv) % P;
  let b = index / (cv * P);
  let h = p / side;
  let w = p % side;
  let n = (h / S) * (side / S) + w / S;
  let k = ((h % S) * S + w % S) * cv + c;
  result[index] = dy[(b * (P / (S * S)) + n) * cv * S * S + k];
}
