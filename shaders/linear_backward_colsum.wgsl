// Column sums for backward reductions over rows: out (S, M), out[s, m] = sum of a[r, m] over
// the rows r of split s (rows s*rows .. min(R, (s+1)*rows) - 1), added in row order. Used for
// dBias = sum_n dY[n, :], dBeta, and to add up the (S, M) partials the dW / dGamma kernels
// write (S = 1 then). Deterministic: no atomics; each output has one owner and a fixed order.
// CPU twin: the plain sums in src/engine/cpu/linear.ts (linearBackward's dBias).
//
// Parallelisation: one invocation per output (s, m), m fastest, so neighbours read
// neighbouring words of each row. Any R, M.
// Bindings: a (R, M) f32. Uniforms: rows (per split), splits (S). `size` = S * M.

fn main(index: i32) {
  if (index >= uniforms.size) {
    return;
  }
  let R = uniforms.aShape.x;
  let M = uniforms.aShape.y;
  let s = index / M;
  let m = index - s * M;
  let rEnd = min(R, (s + 1) * uniforms.rows);
  var acc = 0.0;
  for (var r = s * uniforms.rows; r < rEnd; r++) {
    acc += a[r * M + m];
  }
  setOutputAtIndex(index, acc);
}
