// Attention backward, step 3 of 3: dK and dV. FlashAttention-2 backward
// (https://arxiv.org/abs/2307.08691, Algorithm 2) with the roles of the loops as in the paper:
// a workgroup owns a block of keys and loops over all queries that may see them, so every dK/dV
// element has one writer (deterministic, no float atomics). CPU twin: attentionBackward in
// src/engine/cpu/attention.ts.
//
//   P[t, j]  = exp(scale * q[t] . k[j] - lse[t])   over visible keys (0 elsewhere)
//   dS[t, j] = P[t, j] (dOut[t] . v[j] - D[t])
//   dv[j]    = sum_t P[t, j] dOut[t],   dk[j] = scale * sum_t dS[t, j] q[t]
// summed over every query head of the kv head (GQA) and every query t. Visibility as in
// attention.wgsl; masked keys and rows with no visible key contribute nothing.
//
// Parallelisation: one workgroup of {{WG}} threads per (b, kv head g, block of BK = {{BK}}
// keys). The K and V tiles stay in workgroup memory; the loop runs over blocks of BQ = {{BQ}}
// query rows R = t * GROUP + h % GROUP (the GROUP = NH / NKV heads of g together, which is
// where the GQA sum happens). Per row block: load Q (pre-scaled, which supplies dk's scale)
// and dOut tiles with their lse and D; every thread computes BQ*BK/WG entries of P and dS;
// then every thread accumulates its BK*HS/WG elements of dk and dv (registers). With CAUSAL
// the loop starts at the first row block whose last query can see the block's first key.
// Workgroup memory: 2*BQ*HS + 2*BK*(HS+1) + 2*BQ*(BK+1) + 2*BQ floats; nothing grows with T*S.
//
// Inputs: q (B, T, NH*HS), k/v (B, S, NKV*HS), dOut (B, T, NH*HS), lse (B, NH, T),
// delta (B, NH, T), keyMask (B, S) (any tensor when HAS_MASK is false; never read then).
// Uniforms: T, S, NH, NKV, nQBlocks (= ceil(T*GROUP / BQ)), nKBlocks (= ceil(S / BK)), scale.
// Output: flat (2 * B*S*NKV*HS): dk (B, S, NKV*HS), then dv (B, S, NKV*HS) (one tfjs program
// has one output buffer).

const HS: i32 = {{HS}};
const BQ: i32 = {{BQ}};
const BK: i32 = {{BK}};
const WG: i32 = {{WG}};
const GROUP: i32 = {{GROUP}};
const CAUSAL: bool = {{CAUSAL}};
const HAS_MASK: bool = {{HAS_MASK}};

const KV_STRIDE: i32 = HS + 1;
const P_STRIDE: i32 = BK + 1;
const KV_PER_THREAD: i32 = (BK * HS + WG - 1) / WG;
const SCORES_PER_THREAD: i32 = (BQ * BK + WG - 1) / WG;

var<workgroup> qTile: array<f32, BQ * HS>;
var<workgroup> doTile: array<f32, BQ * HS>;
var<workgroup> kTile: array<f32, BK * KV_STRIDE>;
var<workgroup> vTile: array<f32, BK * KV_STRIDE>;
var<workgroup> pTile: array<f32, BQ * P_STRIDE>;
var<workgroup> dsTile: array<f32, BQ * P_STRIDE>;
var<workgroup> rowLse: array<f32, BQ>;
var<workgroup> rowD: array<f32, BQ>;
var<workgroup> firstBlock: i32;

fn main(index: i32) {
  let B = uniforms.qShape.x;
  let T = uniforms.T;
  let S = uniforms.S;
  let NH = uniforms.NH;
  let NKV = uniforms.NKV;
  let nQB = uniforms.nQBlocks;
  let nKB = uniforms.nKBlocks;
  let rows = T * GROUP;
  let tid = i32(localIndex);

  // Workgroup -> (b, g, kb); spare workgroups (b >= B) compute on clamped indices, write nothing.
  let wg = index / WG;
  let kb = wg % nKB;
  let g = (wg / nKB) % NKV;
  let bRaw = wg / (nKB * NKV);
  let b = min(bRaw, B - 1);
  let j0 = kb * BK;

  // K and V tiles (BK, HS), kept for the whole query loop; keys past S are zero, never visible.
  for (var e = tid; e < BK * HS; e += WG) {
    let j = j0 + e / HS;
    let d = e % HS;
    var kv = 0.0;
    var vv = 0.0;
    if (j < S) {
      let off = ((b * S + j) * NKV + g) * HS + d;
      kv = k[off];
      vv = v[off];
    }
    kTile[(e / HS) * KV_STRIDE + d] = kv;
    vTile[(e / HS) * KV_STRIDE + d] = vv;
  }
  if (tid == 0) {
    var first = 0;
    if (CAUSAL) {
      // Query t sees key j0 from t = j0 - (S - T) on; its first row is t * GROUP.
      first = (max(0, j0 - (S - T)) * GROUP) / BQ;
    }
    firstBlock = first;
  }
  // Also the barrier publishing the K/V tiles; the start must be provably uniform because the
  // loop below holds barriers.
  let qbStart = workgroupUniformLoad(&firstBlock);

  var accK: array<f32, KV_PER_THREAD>;
  var accV: array<f32, KV_PER_THREAD>;
  for (var qb = qbStart; qb < nQB; qb++) {
    let r0 = qb * BQ;

    // Q (pre-scaled) and dOut tiles with each row's lse and D; rows past the end are zero.
    for (var e = tid; e < BQ * HS; e += WG) {
      let R = r0 + e / HS;
      var qv = 0.0;
      var dv = 0.0;
      if (R < rows) {
        let h = g * GROUP + R % GROUP;
        let off = ((b * T + R / GROUP) * NH + h) * HS + e % HS;
        qv = q[off] * uniforms.scale;
        dv = dOut[off];
      }
      qTile[e] = qv;
      doTile[e] = dv;
    }
    for (var r = tid; r < BQ; r += WG) {
      let R = r0 + r;
      var L = 0.0;
      var D = 0.0;
      if (R < rows) {
        let row = (b * NH + g * GROUP + R % GROUP) * T + R / GROUP;
        L = lse[row];
        D = delta[row];
      }
      rowLse[r] = L;
      rowD[r] = D;
    }
    workgroupBarrier();

    // P and dS tiles (BQ, BK): consecutive threads take consecutive keys of one row.
    for (var i = 0; i < SCORES_PER_THREAD; i++) {
      let e = tid + i * WG;
      if (e < BQ * BK) {
        let r = e / BK;
        let jj = e % BK;
        let j = j0 + jj;
        let R = r0 + r;
        var visible = j < S && R < rows;
        if (CAUSAL) {
          visible = visible && j <= S - T + R / GROUP;
        }
        if (HAS_MASK) {
          visible = visible && keyMask[b * S + min(j, S - 1)] >= 0.5;
        }
        var p = 0.0;
        var ds = 0.0;
        if (visible) {
          var s = 0.0;
          var dp = 0.0;
          for (var d = 0; d < HS; d++) {
            s += qTile[r * HS + d] * kTile[jj * KV_STRIDE + d];
            dp += doTile[r * HS + d] * vTile[jj * KV_STRIDE + d];
          }
          p = exp(s - rowLse[r]);
          ds = p * (dp - rowD[r]);
        }
        pTile[r * P_STRIDE + jj] = p;
        dsTile[r * P_STRIDE + jj] = ds;
      }
    }
    workgroupBarrier();

    // dv += P^T dOut, dk += dS^T (scale q) for this thread's (key, d) elements.
    for (var i = 0; i < KV_PER_THREAD; i++) {
      let e = tid + i * WG;
      if (e < BK * HS) {
        let jj = e / HS;
        let d = e % HS;
        var ak = accK[i];
        var av = accV[i];
        for (var r = 0; r < BQ; r++) {
          av += pTile[r * P_STRIDE + jj] * doTile[r * HS + d];
          ak += dsTile[r * P_STRIDE + jj] * qTile[r * HS + d];
        }
        accK[i] = ak;
        accV[i] = av;
      }
    }
    workgroupBarrier(); // before the next row block overwrites the Q/dOut and P/dS tiles
  }

  if (bRaw >= B) {
    return;
  }
  let half = B * S * NKV * HS;
  for (var i = 0; i < KV_PER_THREAD; i++) {
    let e = tid + i * WG;
    let j = j0 + e / HS;
    if (e < BK * HS && j < S) {
      let off = ((b * S + j) * NKV + g) * HS + e % HS;
      result[off] = accK[i];
      result[half + off] = accV[i];
    }
  }
}
