// LayerNorm CPU twin: the plain-loop reference the WGSL kernel (shaders/layer_norm.wgsl) is
// tested against. Matches torch.nn.LayerNorm over the last axis (biased variance, eps inside
// the square root), as SigLIP's encoder uses it.
//
// N rows, C channels.

/**
 * out[n, c] = (inp[n, c] - mean[n]) * rstd[n] * weight[c] + bias[c].
 * mean and rstd (N) are what the backward pass needs; pass null to skip saving them.
 */
export function layerNormForward(
  out: Float32Array, // (N, C)
  mean: Float32Array | null, // (N)
  rstd: Float32Array | null, // (N)
  inp: Float32Array, // (N, C)
  weight: Float32Array, // (C)
  bias: Float32Array, // (C)
  N: number,
  C: number,
  eps: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = n * C;
    // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2: the latter
    // cancels catastrophically for rows with a large mean, which residual streams have.
    let sum = 0;
    for (let c = 0; c < C; c++) sum += inp[row + c];
    const m = sum / C;
    let sq = 0;
    for (let c = 0; c < C; c++) {
      const d = inp[row + c] - m;
      sq += d * d;
    }
    const s = 1 / Math.sqrt(sq / C + eps);
    for (let c = 0; c < C; c++) out[row + c] = (inp[row + c] - m) * s * weight[c] + bias[c];
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = s;
  }
}

/**
 * Backward of layerNormForward (llm.c layernorm_backward, written instead of accumulated),
 * from the mean and rstd the forward saved. With xhat = (inp - mean) rstd, g = dOut * weight:
 *   dInp    = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
 *   dWeight = sum_n dOut * xhat,   dBias = sum_n dOut.
 * Pass null for a gradient that is not needed. Sums in f64.
 */
export function layerNormBackward(
  dInp: Float32Array | null, // (N, C)
  dWeight: Float32Array | null, // (C)
  dBias: Float32Array | null, // (C)
  dOut: Float32Array, // (N, C)
  inp: Float32Array, // (N, C)
  weight: Float32Array, // (C)
  mean: Float32Array, // (N)
  rstd: Float32Array, // (N)
  N: number,
  C: number,
): void {
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    const m = mean[n];
    const s = rstd[n];
    let gMean = 0;
    let gxMean = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[row + c] - m) * s;
      const g = dOut[row + c] * weight[c];
      gMean += g;
      gxMean += g * xhat;
      dw[c] += dOut[row + c] * xhat;
      db[c] += dOut[row + c];
    }
    gMean /= C;
    gxMean /= C;
    if (dInp) {
      for (let c = 0; c < C; c++) {
        const xhat = (inp[row + c] - m) * s;
        dInp[row + c] = s * (dOut[row + c] * weight[c] - gMean - xhat * gxMean);
      }
    }
  }
  if (dWeight) dWeight.set(dw);
  if (dBias) dBias.set(db);
}
