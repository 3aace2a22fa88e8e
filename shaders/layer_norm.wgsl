// LayerNorm forward over the last axis: y[n, c] = (x[n, c] - mean[n]) * rstd[n] * gamma[c] + beta[c],
// rstd = 1 / sqrt(biased variance + eps), as torch.nn.LayerNorm (SigLIP). CPU twin:
// src/engine/cpu/layer_norm.ts.
//
// Parallelisation: one workgroup per row; its {{WG}} threads stride over C (any C, no
// multiple-of-anything requirement), and reduce partial sums through workgroup memory
// (tree reduction, log2(WG) steps). Two reductions, mean then squared deviations: more
// accurate than E[x^2] - E[x]^2 for the large-mean rows of a residual stream, and the row's
// second read comes from cache. One dispatch replaces tfjs's moments + sub + mul + add chain.
// Saves for backward (not written yet): mean and rstd per row, (N) each.
//
// Inputs: x (N, C), gamma (C), beta (C). Uniforms: eps. N, C come from x's shape.

const WG: u32 = {{WG}}u;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Must be called from uniform
// control flow (it holds barriers).
fn workgroupSum(v: f32, tid: u32) -> f32 {
  partial[tid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (tid < stride) {
      partial[tid] = partial[tid] + partial[tid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // the next call overwrites `partial`
  return total;
}

fn main(index: i32) {
  let N = uniforms.xShape.x;
  let C = uniforms.xShape.y;
  let tid = localIndex;
  // tfjs may reshape a long dispatch into a grid with spare workgroups: `row` can exceed N.
  // Those workgroups still run the barriers (kept in uniform control flow) but read a clamped
  // row and write nothing.
  let row = index / i32(WG);
  let base = min(row, N - 1) * C;

  var s = 0.0;
  for (var c = i32(tid); c < C; c += i32(WG)) {
    s += x[base + c];
  }
  let mean = workgroupSum(s, tid) / f32(C);

  var sq = 0.0;
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let d = x[base + c] - mean;
    sq += d * d;
  }
  let rstd = inverseSqrt(workgroupSum(sq, tid) / f32(C) + uniforms.eps);

  if (row < N) {
    for (var c = i32(tid); c < C; c += i32(WG)) {
      result[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
    }
  }
}
