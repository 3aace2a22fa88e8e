// Attention backward, step 2 of 3: dQ. FlashAttention-2 backward
// (https://arxiv.org/abs/2307.08691, Algorithm 2), split so that every output element has one
// writer (deterministic, no float atomics): this kernel owns dQ and loops over keys,
// attention_backward_dkv.wgsl owns dK/dV and loops over queries. CPU twin: attentionBackward in
// src/engine/cpu/attention.ts.
//
//   P[t, j]  = exp(scale * q[t] . k[j] - lse[t])   over visible keys (0 elsewhere)
//   dS[t, j] = P[t, j] (dOut[t] . v[j] - D[t])
//   dq[t]    = scale * sum_j dS[t, j] k[j]
// Visibility as in attention.wgsl: j < S, keyMask[b, j] >= 0.5 (HAS_MASK), and with CAUSAL
// j <= S - T + t. A row with no visible key (lse = -INFINITY) gets dq = 0: its P is never
// evaluated, so no inf - inf appears.
//
// Parallelisation mirrors the forward: one workgroup of {{WG}} threads per (b, kv head g,
// block of BQ = {{BQ}} rows R = t * GROUP + h % GROUP), so the GROUP = NH / NKV query heads
// sharing a kv head share each K/V tile. Q (pre-scaled) and dOut tiles, lse and D stay in
// workgroup memory; per block of BK = {{BK}} keys the K and V tiles are loaded, every thread
// computes BQ*BK/WG entries of dS (two dot products over HS each) into the dS tile, then
// every thread accumulates its BQ*HS/WG elements of dq (kept in registers) from dS and K.
// With CAUSAL the loop stops at the last key the block's last row can see. Nothing grows
// with T*S: the dS tile is BQ x BK.
// Workgroup memory: 2*BQ*HS + 2*BK*(HS+1) + BQ*(BK+1) + 2*BQ floats.
//
// Inputs: q (B, T, NH*HS), k/v (B, S, NKV*HS), dOut (B, T, NH*HS), lse (B, NH, T),
// delta (B, NH, T) from attention_backward_delta.wgsl, keyMask (B, S) (any tensor when
// HAS_MASK is false; never read then).
// Uniforms: T, S, NH, NKV, nQBlocks (= ceil(T*GROUP / BQ)), scale. Output dq (B, T, NH*HS).

const HS: i32 = {{HS}};
const BQ: i32 = {{BQ}};
const BK: i32 = {{BK}};
const WG: i32 = {{WG}};
const GROUP: i32 = {{GROUP}};
const CAUSAL: bool = {{CAUSAL}};
const HAS_MASK: bool = {{HAS_MASK}};

const KV_STRIDE: i32 = HS + 1;
const P_STRIDE: i32 = BK + 1;
const OUT_PER_THREAD: i32 = (BQ * HS + WG - 1) / WG;
const SCORES_PER_THREAD: i32 = (BQ * BK + WG - 1) / WG;

var<workgroup> qTile: array<f32, BQ * HS>;
var<workgroup> doTile: array<f32, BQ * HS>;
var<workgroup> kTile: array<f32, BK * KV_STRIDE>;
var<workgroup> vTile: array<f32, BK * KV_STRIDE>;
var<workgroup> dsTile: array<f32, BQ * P_STRIDE>;
var<workgroup> rowLse: array<f32, BQ>;
var<workgroup> rowD: array<f32, BQ>;
var<workgroup> blockCount: i32;

fn main(index: i32) {
  let B = uniforms.qShape.x;
  let T = uniforms.T;
  let S = uniforms.S;
  let NH = uniforms.NH;
  let NKV = uniforms.NKV;
  let nQB = uniforms.nQBlocks;
  let rows = T * GROUP;
  let tid = i32(localIndex);

  // Workgroup -> (b, g, qb). Spare workgroups of a reshaped dispatch (b >= B) run every
  // barrier on clamped indices and write nothing.
  let wg = index / WG;
  let qb = wg % nQB;
  let g = (wg / nQB) % NKV;
  let bRaw = wg / (nQB * NKV);
  let b = min(bRaw, B - 1);
  let r0 = qb * BQ;

  // Q (pre-scaled) and dOut tiles; rows past the end are zero and never visible.
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
  if (tid == 0) {
    var kEnd = S;
    if (CAUSAL) {
      let tLast = min(T - 1, (r0 + BQ - 1) / GROUP);
      kEnd = min(S, S - T + tLast + 1);
    }
    blockCount = max(0, (kEnd + BK - 1) / BK);
  }
  // Also the barrier publishing the tiles above; the count must be provably uniform because
  // the loop below holds barriers.
  let nBlocks = workgroupUniformLoad(&blockCount);

  var acc: array<f32, OUT_PER_THREAD>;
  for (var kb = 0; kb < nBlocks; kb++) {
    let j0 = kb * BK;

    // K and V tiles (BK, HS); keys past S are zero and never visible.
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
    workgroupBarrier();

    // dS tile (BQ, BK): consecutive threads take consecutive keys of one row.
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
        var ds = 0.0;
        if (visible) {
          var s = 0.0;
          var dp = 0.0;
          for (var d = 0; d < HS; d++) {
            s += qTile[r * HS + d] * kTile[jj * KV_STRIDE + d];
            dp += doTile[r * HS + d] * vTile[jj * KV_STRIDE + d];
          }
          ds = exp(s - rowLse[r]) * (dp - rowD[r]);
        }
        dsTile[r * P_STRIDE + jj] = ds;
      }
    }
    workgroupBarrier();

    // dq += dS K for this thread's elements (scaled once at the end).
    for (var i = 0; i < OUT_PER_THREAD; i++) {
      let e = tid + i * WG;
      if (e < BQ * HS) {
        let r = e / HS;
        let d = e % HS;
        var a = acc[i];
        for (var jj = 0; jj < BK; jj++) {
          a += dsTile[r * P_STRIDE + jj] * kTile[jj * KV_STRIDE + d];
        }
        acc[i] = a;
      }
    }
    workgroupBarrier(); // before the next block overwrites the K/V and dS tiles
  }

  if (bRaw >= B) {
    return;
  }
  for (var i = 0; i < OUT_PER_THREAD; i++) {
    let e = tid + i * WG;
    let R = r0 + e / HS;
    if (e < BQ * HS && R < rows) {
      let h = g * GROUP + R % GROUP;
      result[((b * T + R / GROUP) * NH + h) * HS + e % HS] = acc[i] * uniforms.scale;
    }
  }
}
