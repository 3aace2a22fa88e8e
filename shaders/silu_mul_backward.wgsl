// SwiGLU gate backward, out = silu(gate) * up with s = sigmoid(gate):
//   dGate = dy * up * s * (1 + gate (1 - s))   (GRAD_GATE = true)
//   dUp   = dy * gate * s                      (GRAD_GATE = false)
// One gradient per dispatch, so tfjs computes only the one that is needed (a frozen branch
// costs nothing). CPU twin: siluMulBackward in src/engine/cpu/activations.ts.
//
// Parallelisation: elementwise, one thread per {{VTYPE}} (vec4 when the length is a multiple
// of 4). Needs only the forward's inputs gate and up (saves nothing).
// Inputs: dy (N), gate (N), up (N). Constant GRAD_GATE. uniforms.size = {{VTYPE}} elements.

alias V = {{VTYPE}};

const GRAD_GATE: bool = {{GRAD_GATE}};

fn main(index: i32) {
  if (index < uniforms.size) {
    let g = gate[index];
    // exp(-g) overflows to inf for g << 0: s = 1 / inf = 0, the right limit.
    let s = 1.0 / (1.0 + exp(-g));
    if (GRAD_GATE) {
      result[index] = dy[index] * up[index] * s * (1.0 + g * (1.0 - s));
    } else {
      result[index] = dy[index] * g * s;
    }
  }
}
