// Rotary position embedding CPU twin: the reference for shaders/rope.wgsl. HF Llama
// convention ("rotate_half"): channel i pairs with channel i + HS/2 of the same head, not
// with its neighbour as in the original RoFormer/GPT-J layout.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py
//
// B batch, T tokens, NH heads (of q or of k), HS head size.

/**
 * inv_freq[i] = 1 / theta^(2i / HS), i < HS/2, rounded to float32 at each step as transformers
 * computes it (`1.0 / base ** (arange(0, dim, 2).float() / dim)` in float32). The GPU kernel
 * uploads this same table instead of evaluating pow in WGSL: GPU pow is an exp2/log2
 * approximation whose relative error, multiplied by positions in the thousands, would shift
 * the rotation angle visibly.
 */
export function ropeInvFreq(HS: number, theta: number): Float32Array {
  const half = HS / 2;
  const inv = new Float32Array(half); // (HS/2)
  for (let i = 0; i < half; i++) {
    const expo = Math.fround((2 * i) / HS);
    inv[i] = Math.fround(1 / Math.fround(Math.pow(theta, expo)));
  }
  return inv;
}

/**
 * out = x * cos(pos * inv_freq) + rotate_half(x) * sin(pos * inv_freq), per head; the angle
 * is the float32 product as in transformers. Backward needs only positions (the rotation is
 * orthogonal: dInp is dOut rotated by the negative angle).
 */
export function ropeForward(
  out: Float32Array, // (B, T, NH*HS)
  inp: Float32Array, // (B, T, NH*HS)
  positions: Int32Array, // (B, T)
  B: number,
  T: number,
  NH: number,
  HS: number,
  theta: number,
): void {
  rotatePairs(out, inp, positions, B, T, NH, HS, theta, 1, 'ropeForward');
}

/**
 * Backward of ropeForward: each pair is rotated by pos * inv_freq, an orthogonal map, so
 * dInp is dOut rotated by the negative angle (the transpose):
 *   dInp[i] = dOut[i] c + dOut[i + HS/2] s,   dInp[i + HS/2] = dOut[i + HS/2] c - dOut[i] s.
 */
export function ropeBackward(
  dInp: Float32Array, // (B, T, NH*HS)
  dOut: Float32Array, // (B, T, NH*HS)
  positions: Int32Array, // (B, T)
  B: number,
  T: number,
  NH: number,
  HS: number,
  theta: number,
): void {
  rotatePairs(dInp, dOut, positions, B, T, NH, HS, theta, -1, 'ropeBackward');
}

/** Rotates each (i, i + HS/2) pair by sign * pos * inv_freq[i]: forward (+1) and its transpose (-1). */
function rotatePairs(
  out: Float32Array, // (B, T, NH*HS)
  inp: Float32Array, // (B, T, NH*HS)
  positions: Int32Array, // (B, T)
  B: number,
  T: number,
  NH: number,
  HS: number,
  theta: number,
  sign: 1 | -1,
  where: string,
): void {
  if (HS % 2 !== 0) throw new Error(`${where}: head size ${HS} must be even`);
  const half = HS / 2;
  const inv = ropeInvFreq(HS, theta);
  for (let bt = 0; bt < B * T; bt++) {
    const pos = positions[bt];
    for (let h = 0; h < NH; h++) {
      const base = (bt * NH + h) * HS;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * inv[i]);
        const c = Math.cos(angle);
        const s = sign * Math.sin(angle);
        const x1 = inp[base + i];
        const x2 = inp[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
}
