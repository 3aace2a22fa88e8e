// tanh-approximated GELU backward: with u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u),
//   dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)).
// CPU twin: geluTanhBackward in src/engine/cpu/activations.ts.
//
// Parallelisation: elementwise, one thread per {{VTYPE}} (vec4 when the length is a multiple
// of 4). Needs only the forward's input x (recomputes tanh; saves nothing).
// Inputs: dy (N), x (N). uniforms.size = number of {{VTYPE}} elements.

alias V = {{VTYPE}};

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn main(index: i32) {
  if (index < uniforms.size) {
    let v = x[index];
    // Clamped as in the forward; beyond |u| = 15, 1 - t^2 is 0 in f32 anyway.
    let u = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), V(-15.0), V(15.0));
    let t = tanh(u);
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
    result[index] = dy[index] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du);
  }
}
