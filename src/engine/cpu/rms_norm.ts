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

/**
 * Backward of rmsNormForward from the rstd the forward saved (written, not accumulated).
 * With xhat = inp rstd and g = dOut * weight:
 *   dInp = rstd * (g - xhat * mean_c(g * xhat)),   dWeight = sum_n dOut * xhat.
 * Pass null for a gradient that is not needed. Sums in f64.
 */
export function rmsNormBackward(
  dInp: Float32Array | null, // (N, C)
  dWeight: Float32Array | null, // (C)
  dOut: Float32Array, // (N, C)
  inp: Float32Array, // (N, C)
  weight: Float32Array, // (C)
  rstd: Float32Array, // (N)
  N: number,
  C: number,
): void {
  const dw = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    const s = rstd[n];
    let gxMean = 0;
    for (let c = 0; c < C; c++) {
      const xhat = inp[row + c] * s;
      gxMean += dOut[row + c] * weight[c] * xhat;
      dw[c] += dOut[row + c] * xhat;
    }
    gxMean /= C;
    if (dInp) {
      for (let c = 0; c < C; c++) {
        dInp[row + c] = s * (dOut[row + c] * weight[c] - inp[row + c] * s * gxMean);
      }
    }
  }
  if (dWeight) dWeight.set(dw);
}
