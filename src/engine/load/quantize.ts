// CPU quantisation of linear weights into the packed layouts of LinearWeight (ops/ops.ts), and
// the inverse. The loader quantises one weight at a time on its way to the GPU; the kernels'
// CPU twins and error diagnostics dequantise with the same code, so there is exactly one
// definition of each layout.
//
// q8: symmetric per output row, scale = max|row| / 127, q = round(w / scale) in [-127, 127];
//     packed four int8 per int32 word, element k in byte (k % 4) of word k/4 (little-endian
//     byte order, built with shifts so it does not depend on the host's endianness).
// q4: symmetric per (row, group of groupSize inputs), scale = max|group| / 7,
//     nibble = clamp(round(w / scale) + 8, 0, 15); eight nibbles per word, nibble k % 8 of
//     word k/8 counted from the least significant end. w = (nibble - 8) * scale.
// Padding (k >= inF in the last word) is 0 for q8 and nibble 8 (value 0) for q4, so a kernel
// that reads the padding anyway adds nothing.
//
// outF output features (rows), inF input features (columns), W (outF, inF) row-major (HF layout).

export interface Q8Packed {
  q: Int32Array; // (outF, ceil(inF/4))
  scale: Float32Array; // (outF)
}

export interface Q4Packed {
  q: Int32Array; // (outF, ceil(inF/8))
  scale: Float32Array; // (outF, ceil(inF/groupSize))
}

/** Round half away from zero: symmetric, so w and -w quantise to q and -q. */
function roundSym(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

function checkDims(w: ArrayLike<number>, outF: number, inF: number, what: string): void {
  if (!Number.isInteger(outF) || !Number.isInteger(inF) || outF <= 0 || inF <= 0) {
    throw new Error(`${what}: dimensions must be positive integers, got outF=${outF}, inF=${inF}`);
  }
  if (w.length !== outF * inF) {
    throw new Error(`${what}: weight has ${w.length} values, expected outF*inF = ${outF}*${inF} = ${outF * inF}`);
  }
}

/**
 * The q4 group size must be a multiple of 8 (one packed word never straddles two groups) and
 * divide inF rounded up to a multiple of 8 (ops.ts contract, so kernels can walk whole groups).
 */
export function isValidQ4GroupSize(inF: number, groupSize: number): boolean {
  const inF8 = Math.ceil(inF / 8) * 8;
  return Number.isInteger(groupSize) && groupSize > 0 && groupSize % 8 === 0 && inF8 % groupSize === 0;
}

/**
 * The largest valid q4 group size <= preferred for this inF. 8 always qualifies, so this never
 * fails; real SmolVLM widths (576, 768, 1536, 3072, 12288) all take 64 as they are.
 */
export function chooseQ4GroupSize(inF: number, preferred = 64): number {
  for (let g = Math.floor(preferred / 8) * 8; g >= 8; g -= 8) {
    if (isValidQ4GroupSize(inF, g)) return g;
  }
  return 8;
}

/** Quantise W (outF, inF) to int8 with one scale per output row. */
export function quantizeQ8(w: ArrayLike<number>, outF: number, inF: number): Q8Packed {
  checkDims(w, outF, inF, 'quantizeQ8');
  const words = Math.ceil(inF / 4);
  const q = new Int32Array(outF * words); // (outF, ceil(inF/4))
  const scale = new Float32Array(outF); // (outF)
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    let amax = 0;
    for (let k = 0; k < inF; k++) amax = Math.max(amax, Math.abs(w[row + k]));
    if (!Number.isFinite(amax)) throw new Error(`quantizeQ8: row ${o} holds a non-finite value`);
    const s = amax / 127;
    scale[o] = s;
    if (s === 0) continue; // all-zero row: q stays 0
    // Divide by the f32-rounded scale that is stored, so dequantisation is within scale/2.
    const inv = 1 / scale[o];
    for (let k = 0; k < inF; k++) {
      const v = Math.max(-127, Math.min(127, roundSym(w[row + k] * inv)));
      q[o * words + (k >> 2)] |= (v & 0xff) << ((k & 3) * 8);
    }
  }
  return { q, scale };
}

/** Inverse of quantizeQ8: (outF, inF) float32. */
export function dequantizeQ8(q: Int32Array, scale: Float32Array, outF: number, inF: number): Float32Array {
  const words = Math.ceil(inF / 4);
  if (q.length !== outF * words) throw new Error(`dequantizeQ8: q has ${q.length} words, expected ${outF}*${words}`);
  if (scale.length !== outF) throw new Error(`dequantizeQ8: scale has ${scale.length} values, expected ${outF}`);
  const w = new Float32Array(outF * inF); // (outF, inF)
  for (let o = 0; o < outF; o++) {
    for (let k = 0; k < inF; k++) {
      // Shift the byte to the top, then arithmetic-shift back down to sign-extend it.
      const v = (q[o * words + (k >> 2)] << (24 - (k & 3) * 8)) >> 24;
      w[o * inF + k] = v * scale[o];
    }
  }
  return w;
}

/** Quantise W (outF, inF) to 4 bits with one scale per (row, group of groupSize inputs). */
export function quantizeQ4(w: ArrayLike<number>, outF: number, inF: number, groupSize: number): Q4Packed {
  checkDims(w, outF, inF, 'quantizeQ4');
  if (!isValidQ4GroupSize(inF, groupSize)) {
    throw new Error(
      `quantizeQ4: group size ${groupSize} must be a positive multiple of 8 dividing inF rounded up to 8 ` +
        `(${Math.ceil(inF / 8) * 8}); chooseQ4GroupSize(${inF}) gives ${chooseQ4GroupSize(inF)}`,
    );
  }
  const words = Math.ceil(inF / 8);
  const groups = Math.ceil(inF / groupSize);
  const q = new Int32Array(outF * words); // (outF, ceil(inF/8))
  const scale = new Float32Array(outF * groups); // (outF, ceil(inF/groupSize))
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    for (let g = 0; g < groups; g++) {
      const k0 = g * groupSize;
      const k1 = Math.min(inF, k0 + groupSize);
      let amax = 0;
      for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(w[row + k]));
      if (!Number.isFinite(amax)) throw new Error(`quantizeQ4: row ${o} holds a non-finite value`);
      scale[o * groups + g] = amax / 7;
      const s = scale[o * groups + g];
      const inv = s === 0 ? 0 : 1 / s;
      for (let k = k0; k < k1; k++) {
        const nib = Math.max(0, Math.min(15, roundSym(w[row + k] * inv) + 8));
        q[o * words + (k >> 3)] |= nib << ((k & 7) * 4);
      }
    }
    // Padding nibbles hold 8, i.e. the value 0.
    for (let k = inF; k < words * 8; k++) q[o * words + (k >> 3)] |= 8 << ((k & 7) * 4);
  }
  return { q, scale };
}

/** Inverse of quantizeQ4: (outF, inF) float32. */
export function dequantizeQ4(
  q: Int32Array,
  scale: Float32Array,
  outF: number,
  inF: number,
  groupSize: number,
): Float32Array {
  const words = Math.ceil(inF / 8);
  const groups = Math.ceil(inF / groupSize);
  if (q.length !== outF * words) throw new Error(`dequantizeQ4: q has ${q.length} words, expected ${outF}*${words}`);
  if (scale.length !== outF * groups) {
    throw new Error(`dequantizeQ4: scale has ${scale.length} values, expected ${outF}*${groups}`);
  }
  const w = new Float32Array(outF * inF); // (outF, inF)
  for (let o = 0; o < outF; o++) {
    for (let k = 0; k < inF; k++) {
      const nib = (q[o * words + (k >> 3)] >>> ((k & 7) * 4)) & 0xf;
      w[o * inF + k] = (nib - 8) * scale[o * groups + Math.floor(k / groupSize)];
    }
  }
  return w;
}
