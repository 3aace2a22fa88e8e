// Bias include for linear kernels with a bias. Binding: bias (outF) f32.
fn biasAt(o: i32) -> f32 {
  return bias[o];
}
