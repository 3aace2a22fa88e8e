// linear GEMV, for few rows of x (decode: N = 1): one workgroup per (row n, block of R output
// features). Its WG invocations split inF (invocation t takes k = 4t, 4t + 4WG, ...), each
// keeping R partial sums, then reduce them in workgroup memory with a tree of log2(WG) steps
// (no subgroup operations: not every adapter has them). Weights are decoded in registers and
// never written back; the weight scale is applied once per scale span (W_SPAN). Needs: linear_x, a linear_w_* decoder and a linear_bias* include.
// Constants: WG (invocations per workgroup, a power of two), R (output rows per workgroup).
// Uniforms: n (N), inF, outF. Dispatch: N * ceil(outF / R) workgroups.

const WG = {{WG}};
const R = {{R}};

var<workgroup> partial: array<f32, {{WG}} * {{R}}>; // (R, WG)

fn main(index: i32) {
  // The grid may have been reshaped to 2-D by tfjs for large dispatches: linearise it.
  let wg = i32(workgroupId.x + numWorkgroups.x * (workgroupId.y + numWorkgroups.y * workgroupId.z));
  let t = i32(localIndex);
  let blocks = (uniforms.outF + R - 1) / R;
  let n = wg / blocks;
  let o0 = (wg - n * blocks) * R;
  let valid = n < uniforms.n;

  var acc: array<f32, {{R}}>;
  for (var r = 0; r < R; r++) {
    acc[r] = 0.0;
  }
  // Rows past outF read row outF - 1 again and are dropped at the end: no branch inside.
  var rowO: array<i32, {{R}}>;
  for (var r = 0; r < R; r++) {
    rowO[r] = min(o0 + r, uniforms.outF - 1);
  }
  if (valid) {
    // Walk inF one scale span at a time: raw products inside, one scale multiply per span.
    for (var k0 = 0; k0 < uniforms.inF; k0 += W_SPAN) {
      let k1 = min(uniforms.inF, k0 + W_SPAN);
      // Explicitly zeroed each span (not every compiler re-initialises a var declared in a loop).
      var raw: array<f32, {{R}}>;
      for (var r = 0; r < R; r++) {
        raw[r] = 0.0;
      }
      for (var k = k0 + t * 4; k < k1; k += WG * 4) {
        let xv = loadX4(n, k);
        for (var r = 0; r < R; r++) {
          raw[r] += dot(xv, wRaw4(rowO[r], k));
        }
      }
      for (var r = 0; r < R; r++) {
        acc[r] += raw[r] * wScale(rowO[r], k0);
      }
    }
  }
  for (var r = 0; r < R; r++) {
    partial[r * WG + t] = acc[r];
  }
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s / 2) {
    if (t < s) {
      for (var r = 0; r < R; r++) {
        partial[r * WG + t] += partial[r * WG + t + s];
      }
    }
    workgroupBarrier();
  }
  for (var r = t; r < R; r += WG) {
    let o = o0 + r;
    if (valid && o < uniforms.outF) {
      setOutputAtIndex(n * uniforms.outF + o, partial[r * WG] + biasAt(o));
    }
  }
}
