// Scaled dot-product attention forward with fused, tiled online softmax (FlashAttention,
// https://arxiv.org/abs/2205.14135, Algorithm 1): no (T, S) score matrix is ever stored.
// CPU twin: src/engine/cpu/attention.ts.
//
//   out[b, t, h] = sum_j softmax_j(scale * q[b, t, h] . k[b, j, g]) v[b, j, g],  g = h / GROUP
// over visible keys j: j < S, keyMask[b, j] >= 0.5 (if HAS_MASK), and with CAUSAL
// j <= S - T + t (query t sits at absolute position S - T + t). A row with no visible key
// writes zeros.
//
// Parallelisation. The GROUP = NH / NKV query heads that share a kv head are processed
// together, so each K/V tile loaded into workgroup memory serves all of them (GQA reuse).
// Their query rows are flattened as R = t * GROUP + (h % GROUP), R < T * GROUP.
// One workgroup of {{WG}} threads per (b, kv head g, block of BQ = {{BQ}} rows R, key split).
//   - Q tile (BQ, HS), pre-scaled, stays in workgroup memory for the whole key loop.
//   - Loop over blocks of BK = {{BK}} keys: load the K tile; every thread computes
//     BQ*BK/WG scores (dot products over HS) into the P tile; one thread per row updates the
//     row's running max m and sum l and turns scores into exp(s - m) while all threads load
//     the V tile into the same buffer as K; then every thread rescales and accumulates its
//     BQ*HS/WG output elements (kept in registers) from P and V.
//   - With causal masking the loop stops at the last key the block's last row can see.
// Decode (T = 1) has few rows, so the key range is also split across uniforms.keySplits
// workgroups (flash-decoding): with PARTIAL each writes its unnormalised partial (acc, m, l)
// and attention_combine.wgsl merges them; otherwise (keySplits = 1) this kernel writes the
// output. The split count is a uniform, not a constant, so a growing KV cache does not
// compile a new pipeline each time the count changes.
// Workgroup memory: BQ*HS + BK*(HS+1) + BQ*(BK+1) + 2*BQ floats; the +1 row padding keeps
// the strided reads of the score loop off a single memory bank.
// Saves for backward (SAVE_LSE, unsplit path): the log-sum-exp m + log(l) of each row's scaled
// scores, -INFINITY for a row with no visible key, from which attention_backward_*.wgsl
// recompute the probabilities tile by tile. (The split path's lse comes from the combine pass.)
//
// Inputs: q (B, T, NH*HS), k (B, S, NKV*HS), v (B, S, NKV*HS), keyMask (B, S) (when
// HAS_MASK is false the caller binds any tensor there and it is never read).
// Uniforms: T, S, NH, NKV, nQBlocks (= ceil(T*GROUP / BQ)), keySplits, splitLen (keys per
// split, a multiple of BK), scale.
// Output: (B, T, NH*HS); with SAVE_LSE a flat (B*T*NH*HS + B*NH*T) buffer holding that
// output followed by lse (B, NH, T); with PARTIAL, partials (records, HS + 2) instead, record
// (((b*NKV + g)*nQBlocks + qb)*keySplits + split)*BQ + r holding acc[0..HS), m, l.

const HS: i32 = {{HS}};
const BQ: i32 = {{BQ}};
const BK: i32 = {{BK}};
const WG: i32 = {{WG}};
const GROUP: i32 = {{GROUP}};
const PARTIAL: bool = {{PARTIAL}};
const CAUSAL: bool = {{CAUSAL}};
const HAS_MASK: bool = {{HAS_MASK}};
const SAVE_LSE: bool = {{SAVE_LSE}};

const KV_STRIDE: i32 = HS + 1;
const P_STRIDE: i32 = BK + 1;
const OUT_PER_THREAD: i32 = (BQ * HS + WG - 1) / WG;
const SCORES_PER_THREAD: i32 = (BQ * BK + WG - 1) / WG;
// Score of a hidden key. Finite (WGSL has no infinity literal); `exp(NEG - m)` underflows to 0.
const NEG: f32 = -3.0e38;

var<workgroup> qTile: array<f32, BQ * HS>;
var<workgroup> kvTile: array<f32, BK * KV_STRIDE>;
var<workgroup> pTile: array<f32, BQ * P_STRIDE>;
var<workgroup> rowCorr: array<f32, BQ>;
var<workgroup> rowSum: array<f32, BQ>;
var<workgroup> rowMax: array<f32, BQ>;
var<workgroup> blockCount: i32;

fn main(index: i32) {
  let B = uniforms.qShape.x;
  let T = uniforms.T;
  let S = uniforms.S;
  let NH = uniforms.NH;
  let NKV = uniforms.NKV;
  let nQB = uniforms.nQBlocks;
  let splits = uniforms.keySplits;
  let rows = T * GROUP;
  let tid = i32(localIndex);

  // Workgroup -> (b, g, qb, split). A reshaped dispatch may add spare workgroups (b >= B):
  // they run every barrier on clamped indices and write nothing.
  let wg = index / WG;
  let split = wg % splits;
  let qb = (wg / splits) % nQB;
  let g = (wg / (splits * nQB)) % NKV;
  let bRaw = wg / (splits * nQB * NKV);
  let b = min(bRaw, B - 1);
  let r0 = qb * BQ;

  // Q tile, pre-scaled. Rows past the end are zero and masked out below.
  for (var e = tid; e < BQ * HS; e += WG) {
    let R = r0 + e / HS;
    var val = 0.0;
    if (R < rows) {
      let h = g * GROUP + R % GROUP;
      val = q[((b * T + R / GROUP) * NH + h) * HS + e % HS] * uniforms.scale;
    }
    qTile[e] = val;
  }

  // Key range of this workgroup: [kStart, kStop).
  let kStart = split * uniforms.splitLen;
  if (tid == 0) {
    var kEnd = S;
    if (CAUSAL) {
      let tLast = min(T - 1, (r0 + BQ - 1) / GROUP);
      kEnd = min(S, S - T + tLast + 1);
    }
    let kStop = min(kEnd, kStart + uniforms.splitLen);
    blockCount = max(0, (kStop - kStart + BK - 1) / BK);
  }
  // Also the barrier that publishes qTile. The count is read through workgroupUniformLoad
  // because the loop below holds barriers and must be provably uniform.
  let nBlocks = workgroupUniformLoad(&blockCount);

  var m = NEG; // running max of row `tid` (threads tid < BQ own one row each)
  var l = 0.0; // running sum of exp(score - m) of that row
  var acc: array<f32, OUT_PER_THREAD>;

  for (var kb = 0; kb < nBlocks; kb++) {
    let j0 = kStart + kb * BK;

    // K tile (BK, HS); keys past S are zero and masked out below.
    for (var e = tid; e < BK * HS; e += WG) {
      let j = j0 + e / HS;
      let d = e % HS;
      var val = 0.0;
      if (j < S) {
        val = k[((b * S + j) * NKV + g) * HS + d];
      }
      kvTile[(e / HS) * KV_STRIDE + d] = val;
    }
    workgroupBarrier();

    // Scores (BQ, BK): consecutive threads take consecutive keys of one row.
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
        var s = NEG;
        if (visible) {
          var dot = 0.0;
          for (var d = 0; d < HS; d++) {
            dot += qTile[r * HS + d] * kvTile[jj * KV_STRIDE + d];
          }
          s = dot;
        }
        pTile[r * P_STRIDE + jj] = s;
      }
    }
    workgroupBarrier();

    // Online softmax update, one thread per row ...
    if (tid < BQ) {
      var blockMax = NEG;
      for (var jj = 0; jj < BK; jj++) {
        blockMax = max(blockMax, pTile[tid * P_STRIDE + jj]);
      }
      let mNew = max(m, blockMax);
      // exp(m - mNew) is 1 while the row has seen nothing (both NEG; l and acc are 0 then).
      let corr = exp(m - mNew);
      var sum = 0.0;
      for (var jj = 0; jj < BK; jj++) {
        let s = pTile[tid * P_STRIDE + jj];
        let p = select(0.0, exp(s - mNew), s > 0.5 * NEG);
        pTile[tid * P_STRIDE + jj] = p;
        sum += p;
      }
      l = l * corr + sum;
      m = mNew;
      rowCorr[tid] = corr;
    }
    // ... while everyone loads the V tile over K (the score loop is past its barrier).
    for (var e = tid; e < BK * HS; e += WG) {
      let j = j0 + e / HS;
      let d = e % HS;
      var val = 0.0;
      if (j < S) {
        val = v[((b * S + j) * NKV + g) * HS + d];
      }
      kvTile[(e / HS) * KV_STRIDE + d] = val;
    }
    workgroupBarrier();

    // acc = acc * corr + P V for this thread's output elements.
    for (var i = 0; i < OUT_PER_THREAD; i++) {
      let e = tid + i * WG;
      if (e < BQ * HS) {
        let r = e / HS;
        let d = e % HS;
        var a = acc[i] * rowCorr[r];
        for (var jj = 0; jj < BK; jj++) {
          a += pTile[r * P_STRIDE + jj] * kvTile[jj * KV_STRIDE + d];
        }
        acc[i] = a;
      }
    }
    workgroupBarrier(); // before the next block overwrites kvTile and pTile
  }

  if (tid < BQ) {
    rowSum[tid] = l;
    rowMax[tid] = m;
  }
  workgroupBarrier();

  if (bRaw >= B) {
    return;
  }
  for (var i = 0; i < OUT_PER_THREAD; i++) {
    let e = tid + i * WG;
    let r = e / HS;
    let d = e % HS;
    let R = r0 + r;
    if (e < BQ * HS && R < rows) {
      if (!PARTIAL) {
        let lr = rowSum[r];
        let h = g * GROUP + R % GROUP;
        result[((b * T + R / GROUP) * NH + h) * HS + d] = select(0.0, acc[i] / lr, lr > 0.0);
        if (SAVE_LSE && d == 0) {
          let lse = select(-uniforms.INFINITY, rowMax[r] + log(lr), lr > 0.0);
          result[B * T * NH * HS + (b * NH + h) * T + R / GROUP] = lse;
        }
      } else {
        let rec = (((b * NKV + g) * nQB + qb) * splits + split) * BQ + r;
        result[rec * (HS + 2) + d] = acc[i];
        if (d == 0) {
          result[rec * (HS + 2) + HS] = rowMax[r];
          result[rec * (HS + 2) + HS + 1] = rowSum[r];
        }
      }
    }
  }
}
