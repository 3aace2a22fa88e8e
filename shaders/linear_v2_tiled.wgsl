// linear v2, tiled: y = x W^T + b for many rows of x (prefill, training). A workgroup computes
// a TN x TO tile of y; per step of TK inputs it stages x (TN, TK) and the DEQUANTISED weights
// (TO, TK) in workgroup memory (each weight is decoded once per workgroup, not once per use),
// then each of its (TN/RN) * (TO/RO) invocations accumulates an RN x RO block in registers.
// Needs: linear_x, a linear_w_* decoder and a linear_bias* include.
// Constants: TN, TO, TK (multiple of 4), RN, RO, WG = (TN/RN) * (TO/RO).
// Uniforms: n (N), inF, outF. Dispatch: ceil(N/TN) * ceil(outF/TO) workgroups.

const TN = {{TN}};
const TO = {{TO}};
const TK = {{TK}};
const RN = {{RN}};
const RO = {{RO}};
const WG = {{WG}};
const K4 = TK / 4;

var<workgroup> xs: array<vec4<f32>, {{TN}} * {{TK}} / 4>; // (TN, TK/4)
var<workgroup> ws: array<vec4<f32>, {{TO}} * {{TK}} / 4>; // (TO, TK/4)

fn main(index: i32) {
  let wg = i32(workgroupId.x + numWorkgroups.x * (workgroupId.y + numWorkgroups.y * workgroupId.z));
  let t = i32(localIndex);
  let tilesO = (uniforms.outF + TO - 1) / TO;
  let n0 = (wg / tilesO) * TN;
  let o0 = (wg % tilesO) * TO;
  let tx = t % (TO / RO); // which RO-block of outputs
  let ty = t / (TO / RO); // which RN-block of rows

  var acc: array<array<f32, {{RO}}>, {{RN}}>;
  for (var i = 0; i < RN; i++) {
    for (var j = 0; j < RO; j++) {
      acc[i][j] = 0.0;
    }
  }

  for (var k0 = 0; k0 < uniforms.inF; k0 += TK) {
    // Stage the tiles; out-of-range rows and columns load zeros (rows are clamped into range
    // and zeroed, so no invocation reads outside its buffers).
    for (var e = t; e < TN * K4; e += WG) {
      let r = e / K4;
      let k = k0 + (e % K4) * 4;
      let n = n0 + r;
      var v = vec4<f32>(0.0);
      if (n < uniforms.n && k < uniforms.inF) {
        v = loadX4(n, k);
      }
      xs[e] = v;
    }
    for (var e = t; e < TO * K4; e += WG) {
      let r = e / K4;
      let k = k0 + (e % K4) * 4;
      let o = o0 + r;
      var v = vec4<f32>(0.0);
      if (o < uniforms.outF && k < uniforms.inF) {
        v = loadW4(o, k);
      }
      ws[e] = v;
    }
    workgroupBarrier();
    for (var kk = 0; kk < K4; kk++) {
      var wv: array<vec4<f32>, {{RO}}>;
      for (var j = 0; j < RO; j++) {
        wv[j] = ws[(tx * RO + j) * K4 + kk];
      }
      for (var i = 0; i < RN; i++) {
        let xv = xs[(ty * RN + i) * K4 + kk];
        for (var j = 0; j < RO; j++) {
          acc[i][j] += dot(xv, wv[j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0; i < RN; i++) {
    let n = n0 + ty * RN + i;
    for (var j = 0; j < RO; j++) {
      let o = o0 + tx * RO + j;
      if (n < uniforms.n && o < uniforms.outF) {
        setOutputAtIndex(n * uniforms.outF + o, acc[i][j] + biasAt(o));
      }
    }
  }
}
