// RMSNorm backward, gamma gradient partials: out[s, c] = sum over the rows n of split s of
// dy[n, c] * x[n, c] * rstd[n], rstd recomputed as in the forward (shaders/rms_norm.wgsl).
// The caller adds the S partials in order (linear_backward_colsum.wgsl): deterministic, no
// atomics. CPU twin: rmsNormBackward's dWeight in src/engine/cpu/rms_norm.ts.
//
// Parallelisation: one workgroup per split of `rows` consecutive rows; per row the {{WG}}
// threads reduce the sum of squares (one workgroupSum), then each thread adds into the output
// words of its own channels (c = tid, tid + WG, ...), which only it reads and writes. Any C.
// Inputs: dy (N, C), x (N, C). Uniforms: eps, rows (per split). Output (S, C).

const WG: u32 = {{WG}}u;

var<workgroup> rowRange: vec2<i32>;
var<workgroup> partial: array<f32, WG>;

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
  let S = uniforms.outShape.x;
  let tid = localIndex;
  let split = index / i32(WG);
  let valid = split < S;
  let out = min(split, S - 1) * C;
  // The row range is the same for the whole workgroup, but it derives from the invocation
  // index, which uniformity analysis treats as varying: publish it through workgroup memory
  // so the loop holding the barriers is provably uniform.
  if (tid == 0u) {
    let first = min(split, S - 1) * uniforms.rows;
    rowRange = vec2<i32>(first, min(N, first + uniforms.rows));
  }
  let range = workgroupUniformLoad(&rowRange);
  let n0 = range.x;
  let n1 = range.y;
  for (var n = n0; n < n1; n++) {
    let base = n * C;
    var sq = 0.0;
    for (var c = i32(tid); c < C; c += i32(WG)) {
      let v = x[base + c];
      sq += v * v;
    }
    let rstd = inverseSqrt(workgroupSum(sq, tid) / f32(C) + uniforms.eps);
    if (valid) {
      for (var c = i32(tid); c < C; c += i32(WG)) {
        let v = dy[base + c] * x[base + c] * rstd;
        if (n == n0) {
          result[out + c] = v;
        } else {
          result[out + c] += v;
        }
      }
    }
  }
}
