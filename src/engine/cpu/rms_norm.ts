// RMSNorm CPU twin: the plain-loop reference for shaders/rms_norm.wgsl. Matches transformers'
// LlamaRMSNorm: in float32, x * rsqrt(mean(x^2) + eps), then times weight.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py
//
// N rows, C channels.

/** out[n, c] = inp[n, c] * rstd[n] * weight[c]; rstd (N) is saved for backward when given. */
export function rmsNormForward(
  out: Float32Array, // (N, C)
  rstd: Float32Array | null, // (N)
  inp: Float32Array, // (N, C)
  weight: Float32Array, // (C)
  N: number,
  C: number,
  eps: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let sq = 0;
    for (let c = 0; c < C; c++) sq += inp[row + c] * inp[row + c];
    const s = 1 / Math.sqrt(sq / C + eps);
    for (let c = 0; c < C; c++) out[row + c] = inp[row + c] * s * weight[c];
    if (rstd) rstd[n] = s;
  }
}
