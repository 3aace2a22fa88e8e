// Attention backward, step 1 of 3: D[b, h, t] = sum_d dOut[b, t, h, d] * out[b, t, h, d], the
// row term of the softmax gradient (dS = P (dP - D), since sum_j P dP = dOut . out). Computed
// once here so that the dQ and dK/dV kernels, which both need it for every row, need not.
// CPU twin: attentionBackward in src/engine/cpu/attention.ts (it computes D inline).
//
// Parallelisation: one thread per row (b, h, t), a sequential dot over HS = {{HS}}; the pass
// reads dOut and out once, cheap beside the two recompute kernels.
//
// Inputs: dOut (B, T, NH*HS), o (B, T, NH*HS) = the forward output.
// Output: (B, NH, T).

const HS: i32 = {{HS}};

fn main(index: i32) {
  if (index >= uniforms.size) {
    return;
  }
  let NH = uniforms.outShape.y;
  let T = uniforms.outShape.z;
  let t = index % T;
  let h = (index / T) % NH;
  let b = index / (T * NH);
  let off = ((b * T + t) * NH + h) * HS;
  var acc = 0.0;
  for (var d = 0; d < HS; d++) {
    acc += dOut[off + d] * o[off + d];
  }
  result[index] = acc;
}
