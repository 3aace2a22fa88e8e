// linear v3, register-blocked without workgroup memory: y = x W^T + b, each invocation
// computes an RN x RO block of y straight from global memory, decoding each weight vec4 once
// per block and reusing it for RN rows of x. No barriers: on CPU-emulated adapters
// (SwiftShader) a workgroup barrier suspends and resumes every invocation, which costs more
// than the shared-memory reuse saves, and "global memory" is the CPU's cache anyway. With
// RN = 1 it is the decode-step GEMV. Needs: linear_x, a linear_w_* decoder and a linear_bias*
// include. Constants: RN, RO. Uniforms: n (N), inF, outF. `size` = N * outF.
// Invocation i takes output block (i / blocksO, i % blocksO): neighbours share rows of x.

const RN = {{RN}};
const RO = {{RO}};

fn main(index: i32) {
  let blocksO = (uniforms.outF + RO - 1) / RO;
  let blocksN = (uniforms.n + RN - 1) / RN;
  if (index >= blocksO * blocksN) {
    return;
  }
  let n0 = (index / blocksO) * RN;
  let o0 = (index % blocksO) * RO;
  // Rows past the end are clamped into range (read again, dropped at the store): no branches
  // in the inner loop.
  var rowN: array<i32, {{RN}}>;
  for (var i = 0; i < RN; i++) {
    rowN[i] = min(n0 + i, uniforms.n - 1);
  }
  var rowO: array<i32, {{RO}}>;
  for (var j = 0; j < RO; j++) {
    rowO[j] = min(o0 + j, uniforms.outF - 1);
  }
  var acc: array<array<f32, {{RO}}>, {{RN}}>;
  // Walk inF one scale span at a time: raw products inside, one scale multiply per span.
  for (var k0 = 0; k0 < uniforms.inF; k0 += W_SPAN) {
    let k1 = min(uniforms.inF, k0 + W_SPAN);
    // Explicitly zeroed each span (not every compiler re-initialises a var declared in a loop).
    var raw: array<array<f32, {{RO}}>, {{RN}}>;
    for (var i = 0; i < RN; i++) {
      for (var j = 0; j < RO; j++) {
        raw[i][j] = 0.0;
      }
    }
    for (var k = k0; k < k1; k += 4) {
      var wv: array<vec4<f32>, {{RO}}>;
      for (var j = 0; j < RO; j++) {
        wv[j] = wRaw4(rowO[j], k);
      }
      for (var i = 0; i < RN; i++) {
        let xv = loadX4(rowN[i], k);
        for (var j = 0; j < RO; j++) {
          raw[i][j] += dot(xv, wv[j]);
        }
      }
    }
    for (var j = 0; j < RO; j++) {
      let s = wScale(rowO[j], k0);
      for (var i = 0; i < RN; i++) {
        acc[i][j] += raw[i][j] * s;
      }
    }
  }
  for (var i = 0; i < RN; i++) {
    let n = n0 + i;
    for (var j = 0; j < RO; j++) {
      let o = o0 + j;
      if (n < uniforms.n && o < uniforms.outF) {
        setOutputAtIndex(n * uniforms.outF + o, acc[i][j] + biasAt(o));
      }
    }
  }
}
