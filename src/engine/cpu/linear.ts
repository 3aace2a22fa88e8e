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
