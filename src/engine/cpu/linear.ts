// Linear CPU twin: the plain-loop reference the WGSL linear kernels (shaders/linear_*.wgsl) are
// tested against. y = x W^T (+ b) for f32, q8 and q4 weights in the LinearWeight layouts of
// ops/ops.ts; quantised weights are decoded with load/quantize.ts, the one definition of
// each packed layout.
//
// N rows of x, inF input features, outF output features.
import { dequantizeQ4, dequantizeQ8 } from '../load/quantize';

/** A LinearWeight's contents on the host (same fields as ops.ts, typed arrays for tensors). */
export type HostLinearWeight =
  | { kind: 'f32'; inF: number; outF: number; w: Float32Array; bias?: Float32Array }
  | { kind: 'q8'; inF: number; outF: number; q: Int32Array; scale: Float32Array; bias?: Float32Array }
  | {
      kind: 'q4';
      inF: number;
      outF: number;
      groupSize: number;
      q: Int32Array;
      scale: Float32Array;
      bias?: Float32Array;
    };

/** The weight as f32 (outF, inF), whatever its storage. */
export function hostWeightF32(w: HostLinearWeight): Float32Array {
  switch (w.kind) {
    case 'f32':
      return w.w;
    case 'q8':
      return dequantizeQ8(w.q, w.scale, w.outF, w.inF);
    case 'q4':
      return dequantizeQ4(w.q, w.scale, w.outF, w.inF, w.groupSize);
  }
}

/** out[n, o] = sum_k x[n, k] * W[o, k] + bias[o], accumulated in f64. */
export function linearForward(
  out: Float32Array, // (N, outF)
  x: Float32Array, // (N, inF)
  weight: HostLinearWeight,
  N: number,
): void {
  const { inF, outF } = weight;
  if (x.length !== N * inF) throw new Error(`linearForward: x has ${x.length} values, expected N*inF = ${N}*${inF}`);
  if (out.length !== N * outF) throw new Error(`linearForward: out has ${out.length} values, expected N*outF = ${N}*${outF}`);
  const w = hostWeightF32(weight); // (outF, inF)
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      let acc = weight.bias ? weight.bias[o] : 0;
      for (let k = 0; k < inF; k++) acc += x[n * inF + k] * w[o * inF + k];
      out[n * outF + o] = acc;
    }
  }
}

/**
 * Backward of linearForward (twin of shaders/linear_backward_*.wgsl); each gradient is
 * written (not accumulated), pass null to skip one, accumulated in f64:
 *   dInp[n, k]    = sum_o dOut[n, o] W[o, k]   (any storage kind; W decoded as in forward)
 *   dWeight[o, k] = sum_n dOut[n, o] inp[n, k] (meaningful for f32 weights, which can train)
 *   dBias[o]      = sum_n dOut[n, o]
 */
export function linearBackward(
  dInp: Float32Array | null, // (N, inF)
  dWeight: Float32Array | null, // (outF, inF)
  dBias: Float32Array | null, // (outF)
  dOut: Float32Array, // (N, outF)
  inp: Float32Array | null, // (N, inF), needed for dWeight only
  weight: HostLinearWeight,
  N: number,
): void {
  const { inF, outF } = weight;
  if (dOut.length !== N * outF) throw new Error(`linearBackward: dOut has ${dOut.length} values, expected N*outF = ${N}*${outF}`);
  if (dInp) {
    const w = hostWeightF32(weight); // (outF, inF)
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < inF; k++) {
        let acc = 0;
        for (let o = 0; o < outF; o++) acc += dOut[n * outF + o] * w[o * inF + k];
        dInp[n * inF + k] = acc;
      }
    }
  }
  if (dWeight) {
    if (!inp) throw new Error('linearBackward: dWeight needs the forward input inp');
    for (let o = 0; o < outF; o++) {
      for (let k = 0; k < inF; k++) {
        let acc = 0;
        for (let n = 0; n < N; n++) acc += dOut[n * outF + o] * inp[n * inF + k];
        dWeight[o * inF + k] = acc;
      }
    }
  }
  if (dBias) {
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let n = 0; n < N; n++) acc += dOut[n * outF + o];
      dBias[o] = acc;
    }
  }
}
