// Bias include for linear kernels without a bias: biasAt(o) is 0.
fn biasAt(o: i32) -> f32 {
  return 0.0;
}
