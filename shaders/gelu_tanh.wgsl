// tanh-approximated GELU forward (transformers' gelu_pytorch_tanh, SigLIP's MLP activation):
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). CPU twin: src/engine/cpu/activations.ts.
//
// Parallelisation: elementwise, one thread per {{VTYPE}} (vec4 when the length is a multiple
// of 4, so each thread moves 16 bytes). Saves for backward: nothing beyond x.
//
// Inputs: x (N). uniforms.size = number of {{VTYPE}} elements.

alias V = {{VTYPE}};

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn main(index: i32) {
  if (index < uniforms.size) {
    let v = x[index];
    // tanh saturates to +-1 in f32 beyond |u| ~ 9; clamping keeps implementations that build
    // tanh from exp (inf / inf) away from NaN.
    let u = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), V(-15.0), V(15.0));
    result[index] = 0.5 * v * (1.0 + tanh(u));
  }
}
