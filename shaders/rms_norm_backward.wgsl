// RMSNorm backward, input gradient: with xhat = x rstd and g = dy * gamma,
//   dx = rstd * (g - xhat * mean_c(g * xhat)).
// rstd is RECOMPUTED here as in the forward (shaders/rms_norm.wgsl), not saved by it (the
// forward program has one output; the recompute costs one read of a row read anyway).
// CPU twin: rmsNormBackward in src/engine/cpu/rms_norm.ts (which takes a saved rstd).
//
// Parallelisation: one workgroup per row; {{WG}} threads stride over C (any C) and reduce
// twice through workgroup memory (sum of squares, then sum of g * x), then write dx.
// Inputs: dy (N, C), x (N, C), gamma (C). Uniforms: eps. N, C come from x's shape.

const WG: u32 = {{WG}}u;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Call from uniform control flow.
// The leading barrier keeps a second call from overwriting partials still being read.
fn workgroupSum(v: f32, tid: u32) -> f32 {
  workgroupBarrier();
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
  let row = index / i32(WG);
  let base = min(row, N - 1) * C;

  var sq = 0.0;
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let v = x[base + c];
    sq += v * v;
  }
  let rstd = inverseSqrt(workgroupSum(sq, tid) / f32(C) + uniforms.eps);

  var gx = 0.0;
  for (var c = i32(tid); c < C; c += i32(WG)) {
    gx += dy[base + c] * gamma[c] * x[base + c];
  }
  // mean_c(g * xhat) = rstd * mean_c(g * x)
  let m = workgroupSum(gx, tid) / f32(C) * rstd;

  if (row < N) {
    for (var c = i32(tid); c < C; c += i32(WG)) {
      let g = dy[base + c] * gamma[c];
      result[base + c] = rstd * (g - x[base + c] * rstd * m);
    }
  }
}
