// linear backward, weight gradient of an f32 weight: dW (outF, inF) = dY^T X, i.e.
// dW[o, k] = sum_n dY[n, o] X[n, k]. CPU twin: linearBackward in src/engine/cpu/linear.ts.
// Quantised weights are frozen: no kernel produces their gradient.
//
// Parallelisation: deterministic, no atomics. The N axis is cut into S splits of `rows`
// consecutive rows; invocation i owns an RO x (4 RK) block of dW for one split and sums its
// rows in order into registers (per n: RO scalars of dY, RK vec4s of X, RO * RK vec4 FMAs).
// Output: partials (S, outF, inF); when S > 1 the caller adds them up in a fixed order with
// linear_backward_colsum.wgsl (two passes, so the result does not depend on scheduling).
// Blocks are numbered split-major, then o block, then k block fastest (neighbours read
// neighbouring X words). Any N, inF, outF.
// Needs: linear_x (loadX4 masks columns past inF). Constants: RO, RK. Bindings: x (N, inF),
// dy (N, outF). Uniforms: n (N), inF, outF, rows (rows per split), splits (S).
// Dispatch: ceil(S * ceil(outF/RO) * ceil(inF/(4 RK)) / 64) workgroups of 64.

const RO = {{RO}};
const RK = {{RK}};

fn main(index: i32) {
  let blocksK = (uniforms.inF + 4 * RK - 1) / (4 * RK);
  let blocksO = (uniforms.outF + RO - 1) / RO;
  let perSplit = blocksK * blocksO;
  if (index >= perSplit * uniforms.splits) {
    return;
  }
  let s = index / perSplit;
  let b = index % perSplit;
  let o0 = (b / blocksK) * RO;
  let k0 = (b % blocksK) * (4 * RK);
  var colO: array<i32, {{RO}}>;
  for (var j = 0; j < RO; j++) {
    colO[j] = min(o0 + j, uniforms.outF - 1);
  }
  let lastK = ((uniforms.inF - 1) / 4) * 4;
  var colK: array<i32, {{RK}}>;
  for (var r = 0; r < RK; r++) {
    colK[r] = min(k0 + 4 * r, lastK);
  }
  var acc: array<array<vec4<f32>, {{RK}}>, {{RO}}>;
  for (var j = 0; j < RO; j++) {
    for (var r = 0; r < RK; r++) {
      acc[j][r] = vec4<f32>(0.0);
    }
  }
  let nEnd = min(uniforms.n, (s + 1) * uniforms.rows);
  for (var n = s * uniforms.rows; n < nEnd; n++) {
    var xv: array<vec4<f32>, {{RK}}>;
    for (var r = 0; r < RK; r++) {
      xv[r] = loadX4(n, colK[r]);
    }
    for (var j = 0; j < RO; j++) {
      let g = dy[n * uniforms.outF + colO[j]];
      for (var r = 0; r < RK; r++) {
        acc[j][r] += g * xv[r];
      }
    }
  }
  let plane = s * uniforms.outF * uniforms.inF;
  for (var j = 0; j < RO; j++) {
    let o = o0 + j;
    if (o < uniforms.outF) {
      for (var r = 0; r < RK; r++) {
        for (var c = 0; c < 4; c++) {
          let k = k0 + 4 * r + c;
          if (k < uniforms.inF) {
            setOutputAtIndex(plane + o * uniforms.inF + k, acc[j][r][c]);
          }
        }
      }
    }
  }
}
