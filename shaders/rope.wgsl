// Rotary position embedding forward, HF Llama convention (rotate_half): within each head,
// channel i pairs with channel i + HS/2 and the pair is rotated by angle pos * inv_freq[i]:
//   y[i]        = x[i] cos - x[i + HS/2] sin
//   y[i + HS/2] = x[i + HS/2] cos + x[i] sin
// CPU twin: src/engine/cpu/rope.ts.
//
// Parallelisation: one thread per (b, t, head, i < HS/2) pair; it reads the pair once and
// writes both outputs (no cos/sin tables in memory: each thread evaluates its own).
// inv_freq (HS/2) is an input table computed on the CPU exactly as transformers does (float32
// pow), because WGSL pow is an exp2/log2 approximation; the float32 angle pos * inv_freq is
// then fed to our own float32-accurate sin/cos (see sinCos below).
// Saves for backward: nothing but positions (dx is dy rotated by the negative angle).
//
// Inputs: x (B, T, NH*HS) f32, positions (B, T) i32, invFreq (HS/2) f32. Constant: HALF = HS/2.

const HALF: i32 = {{HALF}};
// pi/2 split so that k * HALF_PI_HI is exact in f32 for |k| < 2^16 (HALF_PI_HI has 8
// significant bits): Cody-Waite range reduction.
const HALF_PI_HI: f32 = 1.5703125;
const HALF_PI_LO: f32 = 4.8382679489661923e-4;
const TWO_OVER_PI: f32 = 0.6366197723675814;

// (sin, cos) of a float32 angle to ~1 ulp. WGSL's built-in sin/cos are only specified to an
// absolute 2^-11 on [-pi, pi] (SwiftShader delivers about that), far too coarse for RoPE at
// large positions. Reduce to r in [-pi/4, pi/4] and a quadrant, then evaluate the Cephes
// sinf/cosf minimax polynomials (https://www.netlib.org/cephes/, single/sinf.c).
fn sinCos(angle: f32) -> vec2<f32> {
  let kf = round(angle * TWO_OVER_PI);
  let r = (angle - kf * HALF_PI_HI) - kf * HALF_PI_LO;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  switch (i32(kf) & 3) {
    case 0: { return vec2<f32>(s, c); }
    case 1: { return vec2<f32>(c, -s); }
    case 2: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

fn main(index: i32) {
  let rowLen = uniforms.xShape.z; // NH * HS
  let nPairs = uniforms.xShape.x * uniforms.xShape.y * rowLen / 2;
  if (index >= nPairs) {
    return;
  }
  let i = index % HALF;
  let head = index / HALF; // flat (b, t, h)
  let bt = head / (rowLen / (2 * HALF));
  let sc = sinCos(f32(positions[bt]) * invFreq[i]);
  let lo = head * 2 * HALF + i;
  let x1 = x[lo];
  let x2 = x[lo + HALF];
  result[lo] = x1 * sc.y - x2 * sc.x;
  result[lo + HALF] = x2 * sc.y + x1 * sc.x;
}
