// LayerNorm backward, gamma gradient partials: out[s, c] = sum over the rows n of split s of
// dy[n, c] * xhat[n, c], xhat = (x - mean) rstd with the row statistics recomputed as in the
// forward (shaders/layer_norm.wgsl). The caller adds the S partials in order
// (linear_backward_colsum.wgsl), so dgamma is deterministic (no atomics). dbeta is a plain
// column sum of dy and needs no kernel of its own. CPU twin: layerNormBackward's dWeight.
//
// Parallelisation: one workgroup per split of `rows` consecutive rows; per row the {{WG}}
// threads reduce the statistics (one workgroupSum), then each thread adds dy * xhat into the
// output words of its own channels (c = tid, tid + WG, ...): each word has one owner, which
// reads back only what it wrote itself. Any C.
// Inputs: dy (N, C), x (N, C). Uniforms: eps, rows (per split). Output (S, C).

const WG: u32 = {{WG}}u;

var<workgroup> rowRange: vec2<i32>;
var<workgroup> partial: array<vec2<f32>, WG>;

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
    let shift = x[base];
    var s = vec2<f32>(0.0);
    for (var c = i32(tid); c < C; c += i32(WG)) {
      let d = x[base + c] - shift;
      s += vec2<f32>(d, d * d);
    }
    let stats = workgroupSum(s, tid) / f32(C);
    let mean = shift + stats.x;
    let rstd = inverseSqrt(max(stats.y - stats.x * stats.x, 0.0) + uniforms.eps);
    if (valid) {
      for (var c = i32(tid); c < C; c += i32(WG)) {
        let v = dy[base + c] * (x[base + c] - mean) * rstd;
        if (n == n0) {
          result[out + c] = v;
        } else {
          result[out + c] += v;
        }
      }
    }
  }
}
