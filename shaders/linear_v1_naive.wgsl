// linear v1, naive: y = x W^T + b, one invocation per output element (n, o), looping over inF
// four values at a time. Needs: linear_x, a linear_w_* decoder and a linear_bias* include.
// Uniforms: n (N), inF, outF; `size` = N * outF. The reference the other variants are held to.

fn main(index: i32) {
  if (index >= uniforms.size) {
    return;
  }
  let n = index / uniforms.outF;
  let o = index - n * uniforms.outF;
  var acc = 0.0;
  for (var k = 0; k < uniforms.inF; k += 4) {
    acc += dot(loadX4(n, k), loadW4(o, k));
  }
  setOutputAtIndex(index, acc + biasAt(o));
}
