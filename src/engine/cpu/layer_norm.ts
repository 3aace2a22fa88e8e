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
