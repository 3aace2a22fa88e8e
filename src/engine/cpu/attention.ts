// Scaled dot-product attention CPU twins: the references for shaders/attention.wgsl (forward)
// and shaders/attention_backward_*.wgsl (backward). The forward follows the kernel's algorithm
// (flash-attention style online softmax over blocks of keys, so no (T, S) score matrix exists),
// in float64 JS arithmetic; the backward recomputes each probability from the saved
// log-sum-exp, one key at a time, so it holds no score matrix either.
// https://arxiv.org/abs/2205.14135 (FlashAttention, Algorithm 1: running max and sum)
// https://arxiv.org/abs/2307.08691 (FlashAttention-2, Algorithm 2: backward from the lse)
//
// B batch, T queries, S keys (cached + new), NH query heads, NKV key/value heads, HS head size.
// Query t sits at absolute position S - T + t; with `causal` it sees keys 0..S-T+t.
// Query head h reads kv head floor(h / (NH / NKV)) (grouped-query attention).

export interface AttentionDims {
  B: number;
  T: number;
  S: number;
  NH: number;
  NKV: number;
  HS: number;
}

/**
 * out[b, t, h] = sum_j softmax_j(scale * q[b,t,h] . k[b,j,g]) v[b,j,g] over visible keys j.
 * A key is visible when keyMask[b, j] >= 0.5 (if a mask is given) and, with `causal`,
 * j <= S - T + t. A row with no visible key outputs zeros (not NaN): such rows are padding.
 * lse (B, NH, T), when given, receives the log-sum-exp of the scaled scores (-Infinity for
 * an empty row): with it the backward pass recomputes the probabilities block by block.
 */
export function attentionForward(
  out: Float32Array, // (B, T, NH*HS)
  lse: Float32Array | null, // (B, NH, T)
  q: Float32Array, // (B, T, NH*HS)
  k: Float32Array, // (B, S, NKV*HS)
  v: Float32Array, // (B, S, NKV*HS)
  keyMask: Float32Array | null, // (B, S)
  dims: AttentionDims,
  causal: boolean,
  scale: number,
  blockKeys = 32,
): void {
  const { B, T, S, NH, NKV, HS } = dims;
  if (NH % NKV !== 0) throw new Error(`attentionForward: NH=${NH} is not a multiple of NKV=${NKV}`);
  const group = NH / NKV;
  const acc = new Float64Array(HS); // (HS) running numerator of one query row
  const p = new Float64Array(blockKeys); // (BK) scores, then probabilities, of one key block
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qOff = ((b * T + t) * NH + h) * HS;
        const kEnd = causal ? Math.min(S, S - T + t + 1) : S; // keys [0, kEnd) may be visible
        let m = -Infinity; // running max of visible scores
        let l = 0; // running sum of exp(score - m)
        acc.fill(0);
        for (let j0 = 0; j0 < kEnd; j0 += blockKeys) {
          const n = Math.min(blockKeys, kEnd - j0);
          let blockMax = -Infinity;
          for (let jj = 0; jj < n; jj++) {
            const j = j0 + jj;
            if (keyMask && !(keyMask[b * S + j] >= 0.5)) {
              p[jj] = -Infinity;
              continue;
            }
            const kOff = ((b * S + j) * NKV + g) * HS;
            let dot = 0;
            for (let d = 0; d < HS; d++) dot += q[qOff + d] * k[kOff + d];
            p[jj] = dot * scale;
            if (p[jj] > blockMax) blockMax = p[jj];
          }
          if (blockMax === -Infinity) continue; // nothing visible in this block
          const mNew = Math.max(m, blockMax);
          const corr = Math.exp(m - mNew); // 0 when m was -Infinity
          l *= corr;
          for (let d = 0; d < HS; d++) acc[d] *= corr;
          for (let jj = 0; jj < n; jj++) {
            if (p[jj] === -Infinity) continue;
            const w = Math.exp(p[jj] - mNew);
            l += w;
            const vOff = ((b * S + j0 + jj) * NKV + g) * HS;
            for (let d = 0; d < HS; d++) acc[d] += w * v[vOff + d];
          }
          m = mNew;
        }
        const oOff = ((b * T + t) * NH + h) * HS;
        for (let d = 0; d < HS; d++) out[oOff + d] = l > 0 ? acc[d] / l : 0;
        if (lse) lse[(b * NH + h) * T + t] = l > 0 ? m + Math.log(l) : -Infinity;
      }
    }
  }
}

/**
 * Gradients of attentionForward with respect to q, k and v (overwritten, not accumulated).
 * With P[t, j] = exp(scale * q[t] . k[j] - lse[t]) over visible keys (0 elsewhere) and
 * D[t] = dout[t] . out[t] (= sum_j P[t, j] dP[t, j]):
 *   dv[j] += P[t, j] dout[t]
 *   dP[t, j] = dout[t] . v[j],  dS[t, j] = P[t, j] (dP[t, j] - D[t])
 *   dq[t] += scale * dS[t, j] k[j],  dk[j] += scale * dS[t, j] q[t]
 * A kv head's dk/dv sum over the NH / NKV query heads that read it (GQA). A row with no
 * visible key (lse = -Infinity) contributes nothing and gets dq = 0. Masked keys get
 * dk = dv = 0. `out` and `lse` are what attentionForward returned for these inputs.
 */
export function attentionBackward(
  dq: Float32Array, // (B, T, NH*HS)
  dk: Float32Array, // (B, S, NKV*HS)
  dv: Float32Array, // (B, S, NKV*HS)
  dout: Float32Array, // (B, T, NH*HS)
  out: Float32Array, // (B, T, NH*HS)
  lse: Float32Array, // (B, NH, T)
  q: Float32Array, // (B, T, NH*HS)
  k: Float32Array, // (B, S, NKV*HS)
  v: Float32Array, // (B, S, NKV*HS)
  keyMask: Float32Array | null, // (B, S)
  dims: AttentionDims,
  causal: boolean,
  scale: number,
): void {
  const { B, T, S, NH, NKV, HS } = dims;
  if (NH % NKV !== 0) throw new Error(`attentionBackward: NH=${NH} is not a multiple of NKV=${NKV}`);
  const group = NH / NKV;
  // float64 accumulators: dq of one row, then dk and dv of the whole call (summed over rows).
  const dqRow = new Float64Array(HS); // (HS)
  const dkAcc = new Float64Array(B * S * NKV * HS); // (B, S, NKV*HS)
  const dvAcc = new Float64Array(B * S * NKV * HS); // (B, S, NKV*HS)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const off = ((b * T + t) * NH + h) * HS; // row offset in q, out, dout, dq
        const L = lse[(b * NH + h) * T + t];
        dqRow.fill(0);
        if (L !== -Infinity) {
          let D = 0;
          for (let d = 0; d < HS; d++) D += dout[off + d] * out[off + d];
          const kEnd = causal ? Math.min(S, S - T + t + 1) : S;
          for (let j = 0; j < kEnd; j++) {
            if (keyMask && !(keyMask[b * S + j] >= 0.5)) continue;
            const kOff = ((b * S + j) * NKV + g) * HS;
            let dot = 0;
            let dP = 0;
            for (let d = 0; d < HS; d++) {
              dot += q[off + d] * k[kOff + d];
              dP += dout[off + d] * v[kOff + d];
            }
            const p = Math.exp(dot * scale - L);
            const dS = p * (dP - D) * scale;
            for (let d = 0; d < HS; d++) {
              dvAcc[kOff + d] += p * dout[off + d];
              dkAcc[kOff + d] += dS * q[off + d];
              dqRow[d] += dS * k[kOff + d];
            }
          }
        }
        for (let d = 0; d < HS; d++) dq[off + d] = dqRow[d];
      }
    }
  }
  for (let i = 0; i < dkAcc.length; i++) {
    dk[i] = dkAcc[i];
    dv[i] = dvAcc[i];
  }
}
