// SwiGLU gate forward of the Llama MLP: y = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
// CPU twin: src/engine/cpu/activations.ts.
//
// Parallelisation: elementwise, one thread per {{VTYPE}} (vec4 when the length is a multiple
// of 4). Fuses tfjs's sigmoid, mul, mul into one read of each input and one write.
// Saves for backward: nothing beyond gate and up.
//
// Inputs: gate (N), up (N). uniforms.size = number of {{VTYPE}} elements.

fn main(index: i32) {
  if (index < uniforms.size) {
    let g = gate[index];
    // For g << 0, exp(-g) overflows to inf and g / inf = -0: the right limit, no NaN.
    result[index] = g / (1.0 + exp(-g)) * up[index];
  }
}
