// Idefics3 pixel shuffle CPU twin: the reference for shaders/pixel_shuffle.wgsl. It replays
// transformers' Idefics3Connector.pixel_shuffle view/permute sequence literally (on explicit
// row-major buffers) so it is a faithful reference, independent of the closed-form index
// map the GPU kernel uses.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/modeling_idefics3.py
//
// B batch, P patches (a square number, side H = W = sqrt(P)), C channels, s scale factor.

/** A row-major 4-D tensor. */
interface Dense4 {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** torch's `x.permute(0, 2, 1, 3)` followed by a contiguous copy (what `.reshape` does after a permute). */
function permute0213(x: Dense4): Dense4 {
  const [d0, d1, d2, d3] = x.shape;
  const out = new Float32Array(x.data.length);
  for (let a = 0; a < d0; a++)
    for (let b = 0; b < d1; b++)
      for (let c = 0; c < d2; c++)
        for (let d = 0; d < d3; d++) {
          // in (a, b, c, d) -> out (a, c, b, d)
          out[((a * d2 + c) * d1 + b) * d3 + d] = x.data[((a * d1 + b) * d2 + c) * d3 + d];
        }
  return { data: out, shape: [d0, d2, d1, d3] };
}

/** (B, P, C) -> (B, P/s^2, C*s^2). Pure data movement, so backward is the inverse gather. */
export function pixelShuffleForward(
  out: Float32Array, // (B, P/s^2, C*s^2)
  inp: Float32Array, // (B, P, C)
  B: number,
  P: number,
  C: number,
  s: number,
): void {
  const side = Math.round(Math.sqrt(P));
  if (side * side !== P) throw new Error(`pixelShuffleForward: P=${P} is not a square number`);
  if (side % s !== 0) throw new Error(`pixelShuffleForward: side ${side} is not divisible by scale ${s}`);
  // view (B, H, W, C) -> view (B, H, W/s, C*s): both are free reinterpretations of (B, P, C).
  let x: Dense4 = { data: inp, shape: [B, side, side / s, C * s] };
  x = permute0213(x); // (B, W/s, H, C*s)
  x = { data: x.data, shape: [B, side / s, side / s, C * s * s] }; // reshape (B, W/s, H/s, C*s^2)
  x = permute0213(x); // (B, H/s, W/s, C*s^2)
  out.set(x.data); // reshape (B, P/s^2, C*s^2)
}

/**
 * Backward of pixelShuffleForward: the forward is a permutation, so dInp is dOut sent back
 * through its inverse. Replays the forward on the indices (a (B, P, C) array of element
 * numbers) to learn where each input went, independent of the GPU's closed-form inverse.
 */
export function pixelShuffleBackward(
  dInp: Float32Array, // (B, P, C)
  dOut: Float32Array, // (B, P/s^2, C*s^2)
  B: number,
  P: number,
  C: number,
  s: number,
): void {
  const n = B * P * C;
  // Element numbers below 2^24 are exact in float32.
  if (n >= 1 << 24) throw new Error(`pixelShuffleBackward: ${n} elements are too many for the index replay`);
  const ids = Float32Array.from({ length: n }, (_, i) => i);
  const moved = new Float32Array(n);
  pixelShuffleForward(moved, ids, B, P, C, s); // moved[j] = the input element at output j
  for (let j = 0; j < n; j++) dInp[moved[j]] = dOut[j];
}
