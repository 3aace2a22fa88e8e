// LayerNorm backward, input gradient (llm.c layernorm_backward's dinp):
//   xhat = (x - mean) rstd, g = dy * gamma,
//   dx   = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)).
// mean and rstd are RECOMPUTED here with the forward's own algorithm (shifted one-pass sums,
// shaders/layer_norm.wgsl), not saved by the forward: the forward program has one output, and
// a recompute is one extra read of a row the workgroup reads anyway.
// CPU twin: layerNormBackward in src/engine/cpu/layer_norm.ts (which takes saved mean/rstd).
//
// Parallelisation: one workgroup per row; {{WG}} threads stride over C (any C) and reduce
// twice through workgroup memory (row statistics, then the two means of g), then write dx.
// Inputs: dy (N, C), x (N, C), gamma (C). Uniforms: eps. N, C come from x's shape.

const WG: u32 = {{WG}}u;

var<workgroup> partial: array<vec2<f32>, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Call from uniform control flow.
// The leading barrier keeps a second call from overwriting partials a slower thread is still
// adding up from the first.
fn workgroupSum(v: vec2<f32>, tid: u32) -> vec2<f32> {
  workgroupBarrier();
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
  // Spare workgroups of a reshaped dispatch (row >= N) run the barriers but write nothing.
  let row = index / i32(WG);
  let base = min(row, N - 1) * C;

  let shift = x[base];
  var s = vec2<f32>(0.0);
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let d = x[base + c] - shift;
    s += vec2<f32>(d, d * d);
  }
  let stats = workgroupSum(s, tid) / f32(C);
  let mean = shift + stats.x;
  let rstd = inverseSqrt(max(stats.y - stats.x * stats.x, 0.0) + uniforms.eps);

  var gs = vec2<f32>(0.0);
  for (var c = i32(tid); c < C; c += i32(WG)) {
    let g = dy[base + c] * gamma[c];
    gs += vec2<f32>(g, g * (x[base + c] - mean) * rstd);
  }
  let means = workgroupSum(gs, tid) / f32(C);

  if (row < N) {
    for (var c = i32(tid); c < C; c += i32(WG)) {
      let xhat = (x[base + c] - mean) * rstd;
      let g = dy[base + c] * gamma[c];
      result[base + c] = rstd * (g - means.x - xhat * means.y);
    }
  }
}
