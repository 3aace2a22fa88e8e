// Merges the key-split partials of attention.wgsl (flash-decoding) into the attention output.
// For one output element: M = max over splits of m_s, then
//   out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s,
// zero when no split saw a visible key (all l_s = 0). CPU twin: src/engine/cpu/attention.ts
// (the whole op; splitting does not change the result beyond rounding).
//
// Parallelisation: one thread per output element (b, t, h, d); each reads keySplits
// records. Cheap next to the partial pass: keySplits * (HS + 2) floats per row.
//
// With SAVE_LSE the thread of element d = 0 also writes the row's log-sum-exp M + log(sum_s
// exp(m_s - M) l_s) (-INFINITY for a row with no visible key), for the backward pass.
//
// Inputs: partial (records, HS + 2) as laid out by attention.wgsl. Output (B, T, NH*HS); with
// SAVE_LSE a flat (B*T*NH*HS + B*NH*T) buffer: that output, then lse (B, NH, T).
// Uniforms: B, T, NH, NKV, nQBlocks, keySplits.

const HS: i32 = {{HS}};
const BQ: i32 = {{BQ}};
const GROUP: i32 = {{GROUP}};
const SAVE_LSE: bool = {{SAVE_LSE}};

fn main(index: i32) {
  // uniforms.size also counts the lse tail when SAVE_LSE; one thread per output element.
  let nOut = uniforms.B * uniforms.T * uniforms.NH * HS;
  if (index >= nOut) {
    return;
  }
  let T = uniforms.T;
  let NH = uniforms.NH;
  let d = index % HS;
  let h = (index / HS) % NH;
  let t = (index / (HS * NH)) % T;
  let b = index / (HS * NH * T);
  let g = h / GROUP;
  let R = t * GROUP + h % GROUP;
  let splits = uniforms.keySplits;
  let first = ((b * uniforms.NKV + g) * uniforms.nQBlocks + R / BQ) * splits * BQ + R % BQ;

  var M = -3.0e38;
  for (var s = 0; s < splits; s++) {
    let rec = first + s * BQ;
    if (partial[rec * (HS + 2) + HS + 1] > 0.0) {
      M = max(M, partial[rec * (HS + 2) + HS]);
    }
  }
  var num = 0.0;
  var den = 0.0;
  for (var s = 0; s < splits; s++) {
    let rec = first + s * BQ;
    let l = partial[rec * (HS + 2) + HS + 1];
    if (l > 0.0) {
      let w = exp(partial[rec * (HS + 2) + HS] - M);
      num += w * partial[rec * (HS + 2) + d];
      den += w * l;
    }
  }
  result[index] = select(0.0, num / den, den > 0.0);
  if (SAVE_LSE && d == 0) {
    result[nOut + (b * NH + h) * T + t] = select(-uniforms.INFINITY, M + log(den), den > 0.0);
  }
}
