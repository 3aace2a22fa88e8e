// Elementwise activation CPU twins: references for shaders/gelu_tanh.wgsl and
// shaders/silu_mul.wgsl. N elements (any length).

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * tanh-approximated GELU, transformers' `gelu_pytorch_tanh` (SigLIP's MLP):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Backward needs only inp.
 */
export function geluTanhForward(out: Float32Array, inp: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  }
}

/** SwiGLU gate of the Llama MLP: out = silu(gate) * up, silu(g) = g / (1 + e^-g). Backward needs gate and up. */
export function siluMulForward(out: Float32Array, gate: Float32Array, up: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/**
 * Backward of geluTanhForward: dInp = dOut * d/dx gelu(x), with u = sqrt(2/pi)(x + 0.044715 x^3),
 * t = tanh(u): gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
 */
export function geluTanhBackward(dInp: Float32Array, inp: Float32Array, dOut: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
    const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    dInp[i] = dOut[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du);
  }
}

/**
 * Backward of siluMulForward, s = sigmoid(gate): dGate = dOut * up * s (1 + gate (1 - s)),
 * dUp = dOut * gate * s. Pass null for a gradient that is not needed.
 */
export function siluMulBackward(
  dGate: Float32Array | null,
  dUp: Float32Array | null,
  dOut: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  N: number,
): void {
  for (let i = 0; i < N; i++) {
    const g = gate[i];
    const s = 1 / (1 + Math.exp(-g));
    if (dGate) dGate[i] = dOut[i] * up[i] * s * (1 + g * (1 - s));
    if (dUp) dUp[i] = dOut[i] * g * s;
  }
}
