// RMSNorm forward over the last axis: y[n, c] = x[n, c] * rstd[n] * gamma[c],
// rstd = 1 / sqrt(mean(x^2) + eps), computed in float32 as transformers' LlamaRMSNorm.
// CPU twin: src/engine/cpu/rms_norm.ts.
//
// Parallelisation: one workgroup per row; its {{WG}} threads stride over C (any C) and
// reduce the sum of squares in workgroup memory (one barrier; see workgroupSum); then each
// thread scales its own channels. One pass over the row for the statistic, one for the
// output, one dispatch (tfjs's stock chain is square, mean, add, rsqrt, mul, mul).
// Saves for backward (not written yet): rstd per row, (N).
//
// Inputs: x (N, C), gamma (C). Uniforms: eps. N, C come from x's shape.

const WG: u32 = {{WG}}u;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Call from uniform control flow.
// One barrier, then every thread adds up all WG partials itself (same-address reads are
// broadcasts): as fast as a log2(WG)-barrier tree for WG <= 64 on GPUs, and on SwiftShader,
// where each barrier switches every emulated thread.
fn workgroupSum(v: f32, tid: u32) -> f32 {
  partial[tid] = v;
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < WG; i++) {
    total += partial[i];
  }
  return total;
}

fn main(index: i32) {
  let N = uniforms.xShape.x;
  let C = uniforms.xShape.y;
  let tid = localIndex;
  // Spare workgroups of a reshaped dispatch (row >= N) run the barriers but write nothing.
  let row = index / i32(WG);
  let base = min(row, N - 1) * C;

  var sq = 0.0;
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let v = x[base + c];
    sq += v * v;
  }
  let rstd = inverseSqrt(workgroupSum(sq, tid) / f32(C) + uniforms.eps);

  if (row < N) {
    for (var c = i32(tid); c < C; c += i32(WG)) {
      result[base + c] = x[base + c] * rstd * gamma[c];
    }
  }
}
