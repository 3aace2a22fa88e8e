// linear backward, input gradient: dX (N, inF) = dY (N, outF) W (outF, inF), for f32, q8 and
// q4 weights. The weight is decoded in registers (loadW4 of the linear_w_* include) and never
// written back as f32, so the frozen base stays quantised in training exactly as in inference.
// CPU twin: linearBackward in src/engine/cpu/linear.ts.
//
// Parallelisation: register tiling without workgroup memory (as linear_v3_regblock.wgsl, for
// the same reason: barriers cost more than they save on emulated adapters). Invocation i owns
// an RN x (4 RK) block of dX: rows n0..n0+RN, columns k0..k0+4RK (RK vec4s). It walks the
// outF axis once; per o it loads RN scalars of dY and decodes RK raw vec4s of W row o, each
// decoded vec4 reused for RN rows (RN * RK vec4 FMAs per RN + RK loads); the block's one
// weight scale multiplies the RN dY values, not the RK vectors. Blocks are numbered
// with the k block fastest, so neighbouring invocations read neighbouring words of a W row
// and the same dY values (broadcast). Rows past N and columns past inF are clamped or
// masked, and dropped at the store; any N, inF, outF.
// Needs: a linear_w_* decoder (wRaw4 masks columns past inF or decodes padding to 0; for q4,
// 4 RK must divide the group size GS so that a block never straddles two scales).
// Constants: RN, RK. Bindings: dy (N, outF) f32, then the decoder's. Uniforms: n (N), inF,
// outF. Dispatch: ceil(ceil(N/RN) * ceil(inF/(4 RK)) / 64) workgroups of 64.

const RN = {{RN}};
const RK = {{RK}};

fn main(index: i32) {
  let blocksK = (uniforms.inF + 4 * RK - 1) / (4 * RK);
  let blocksN = (uniforms.n + RN - 1) / RN;
  if (index >= blocksK * blocksN) {
    return;
  }
  let n0 = (index / blocksK) * RN;
  let k0 = (index % blocksK) * (4 * RK);
  // Rows past N read row N - 1 again; columns past inF decode as zeros (k stays inside the
  // padded row while k < ceil(inF/4)*4, else clamp to the last vec4 of the row).
  var rowN: array<i32, {{RN}}>;
  for (var i = 0; i < RN; i++) {
    rowN[i] = min(n0 + i, uniforms.n - 1) * uniforms.outF;
  }
  let lastK = ((uniforms.inF - 1) / 4) * 4;
  var colK: array<i32, {{RK}}>;
  for (var j = 0; j < RK; j++) {
    colK[j] = min(k0 + 4 * j, lastK);
  }
  var acc: array<array<vec4<f32>, {{RK}}>, {{RN}}>;
  for (var i = 0; i < RN; i++) {
    for (var j = 0; j < RK; j++) {
      acc[i][j] = vec4<f32>(0.0);
    }
  }
  for (var o = 0; o < uniforms.outF; o++) {
    var wv: array<vec4<f32>, {{RK}}>;
    for (var j = 0; j < RK; j++) {
      wv[j] = wRaw4(o, colK[j]);
    }
    // The whole column block shares one weight scale (the caller keeps 4 RK dividing the q4
    // group size), so it scales the RN values of dY instead of the RK decoded vectors.
    let sc = wScale(o, colK[0]);
    for (var i = 0; i < RN; i++) {
      let g = dy[rowN[i] + o] * sc;
      for (var j = 0; j < RK; j++) {
        acc[i][j] += g * wv[j];
      }
    }
  }
  for (var i = 0; i < RN; i++) {
    let n = n0 + i;
    if (n < uniforms.n) {
      for (var j = 0; j < RK; j++) {
        for (var c = 0; c < 4; c++) {
          let k = k0 + 4 * j + c;
          if (k < uniforms.inF) {
            setOutputAtIndex(n * uniforms.inF + k, acc[i][j][c]);
          }
        }
      }
    }
  }
}
