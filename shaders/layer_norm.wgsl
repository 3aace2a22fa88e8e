// LayerNorm forward over the last axis: y[n, c] = (x[n, c] - mean[n]) * rstd[n] * gamma[c] + beta[c],
// rstd = 1 / sqrt(biased variance + eps), as torch.nn.LayerNorm (SigLIP). CPU twin:
// src/engine/cpu/layer_norm.ts.
//
// Parallelisation: one workgroup per row; its {{WG}} threads stride over C (any C, no
// multiple-of-anything requirement), and reduce partial sums through workgroup memory
// (one barrier; see workgroupSum). One pass and one reduction gather both sums (of x - shift
// and its square, shifted by the row's first element for accuracy); the second pass writes
// the output, its reads coming from cache. One dispatch replaces tfjs's moments + sub + mul +
// add chain; few barriers matter on emulated and real GPUs alike.
// Saves for backward (not written yet): mean and rstd per row, (N) each.
//
// Inputs: x (N, C), gamma (C), beta (C). Uniforms: eps. N, C come from x's shape.

const WG: u32 = {{WG}}u;

var<workgroup> partial: array<vec2<f32>, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Call from uniform control flow.
// One barrier, then every thread adds up all WG partials itself (same-address reads are
// broadcasts): as fast as a log2(WG)-barrier tree for WG <= 64 on GPUs, and on SwiftShader,
// where each barrier switches every emulated thread.
fn workgroupSum(v: vec2<f32>, tid: u32) -> vec2<f32> {
  partial[tid] = v;
  workgroupBarrier();
  var total = vec2<f32>(0.0);
  for (var i = 0u; i < WG; i++) {
    total += partial[i];
  }
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

  // Sums of d = x - shift and d^2 in one pass and one reduction. Shifting by the row's first
  // element (close to the mean in scale) keeps E[d^2] - E[d]^2 from cancelling
  // catastrophically on rows with a large mean, as a residual stream has.
  let shift = x[base];
  var s = vec2<f32>(0.0);
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let d = x[base + c] - shift;
    s += vec2<f32>(d, d * d);
  }
  let total = workgroupSum(s, tid) / f32(C);
  let mean = shift + total.x;
  let rstd = inverseSqrt(max(total.y - total.x * total.x, 0.0) + uniforms.eps);

  if (row < N) {
    for (var c = i32(tid); c < C; c += i32(WG)) {
      result[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
    }
  }
}
