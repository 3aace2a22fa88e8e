// q8/q4 packing: exact byte layout on hand-made rows, round-trip error bounds on random
// weights with odd sizes, and padding behaviour.
import { describe, expect, it } from 'vitest';
import {
  chooseQ4GroupSize,
  dequantizeQ4,
  dequantizeQ8,
  isValidQ4GroupSize,
  quantizeQ4,
  quantizeQ8,
} from '../../src/engine/load/quantize';
import { mulberry32, randn } from '../../src/lib/util/rng';

function randomMatrix(outF: number, inF: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: outF * inF }, () => randn(rng) * 0.05);
}

describe('quantizeQ8', () => {
  it('packs int8 little-endian, element k in byte k % 4, padding bytes 0', () => {
    // One row, inF = 5: max |w| = 1.27 -> scale 0.01, q = w / 0.01.
    const w = new Float32Array([0.01, -0.02, 1.27, -1.27, 0.5]);
    const { q, scale } = quantizeQ8(w, 1, 5);
    expect(q.length).toBe(2); // ceil(5/4)
    expect(scale[0]).toBeCloseTo(0.01, 7);
    const bytes = [q[0] & 0xff, (q[0] >>> 8) & 0xff, (q[0] >>> 16) & 0xff, (q[0] >>> 24) & 0xff];
    expect(bytes).toEqual([1, 0xfe, 127, 0x81]); // 1, -2, 127, -127 as two's complement bytes
    expect(q[1]).toBe(50); // 0.5 / 0.01 in byte 0; padding bytes 1..3 zero
    // Same bytes through a little-endian byte view (what the GPU sees).
    const view = new Int8Array(q.buffer);
    expect(Array.from(view.subarray(0, 5))).toEqual([1, -2, 127, -127, 50]);
  });

  it('round-trips within scale/2 per element on odd sizes, zero rows stay zero', () => {
    for (const [outF, inF] of [
      [7, 13],
      [3, 1],
      [5, 64],
      [2, 33],
    ]) {
      const w = randomMatrix(outF, inF, outF * 100 + inF);
      w.fill(0, 0, inF); // row 0 all zero
      const { q, scale } = quantizeQ8(w, outF, inF);
      expect(q.length).toBe(outF * Math.ceil(inF / 4));
      const back = dequantizeQ8(q, scale, outF, inF);
      for (let o = 0; o < outF; o++) {
        for (let k = 0; k < inF; k++) {
          const err = Math.abs(back[o * inF + k] - w[o * inF + k]);
          expect(err, `row ${o} col ${k}`).toBeLessThanOrEqual(scale[o] * 0.5 * (1 + 1e-5) + 1e-12);
        }
      }
      expect(scale[0]).toBe(0);
      expect(Array.from(back.subarray(0, inF)).every((v) => v === 0)).toBe(true);
    }
  });

  it('is symmetric: -w quantises to -q', () => {
    const w = randomMatrix(4, 10, 3);
    const neg = w.map((v) => -v);
    const pa = quantizeQ8(w, 4, 10);
    const pb = quantizeQ8(neg, 4, 10);
    const a = dequantizeQ8(pa.q, pa.scale, 4, 10);
    const b = dequantizeQ8(pb.q, pb.scale, 4, 10);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBe(-a[i] + 0);
  });

  it('rejects a size mismatch and non-finite values', () => {
    expect(() => quantizeQ8(new Float32Array(5), 2, 3)).toThrow(/expected outF\*inF/);
    expect(() => quantizeQ8(new Float32Array([1, NaN]), 1, 2)).toThrow(/non-finite/);
  });
});

describe('quantizeQ4', () => {
  it('packs nibbles from the least significant end, offset 8, padding nibble 8', () => {
    // inF = 10, group 16 (valid: ceil8(10)=16): max |w| = 0.7 -> scale 0.1.
    const w = new Float32Array([0.7, -0.7, 0, 0.1, -0.1, 0.3, 0.26, -0.44, 0.05, 0.2]);
    const { q, scale } = quantizeQ4(w, 1, 10, 16);
    expect(q.length).toBe(2);
    expect(scale.length).toBe(1);
    expect(scale[0]).toBeCloseTo(0.1, 7);
    const nibbles = (word: number) => Array.from({ length: 8 }, (_, j) => (word >>> (4 * j)) & 0xf);
    // 7+8, -7+8, 8, 9, 7, 11, round(2.6)=3 -> 11, round(-4.4)=-4 -> 4
    expect(nibbles(q[0])).toEqual([15, 1, 8, 9, 7, 11, 11, 4]);
    // 0.05/0.1 = 0.5 rounds away from zero -> 1 -> 9; 0.2 -> 2 -> 10; padding 8
    expect(nibbles(q[1])).toEqual([9, 10, 8, 8, 8, 8, 8, 8]);
  });

  it('round-trips within scale/2 per element, one scale per group, odd sizes', () => {
    for (const [outF, inF, gs] of [
      [5, 48, 16],
      [3, 13, 16],
      [4, 70, 8],
      [2, 128, 64],
      [6, 9, 16],
    ]) {
      const w = randomMatrix(outF, inF, outF * 7 + inF);
      const { q, scale } = quantizeQ4(w, outF, inF, gs);
      const groups = Math.ceil(inF / gs);
      expect(q.length).toBe(outF * Math.ceil(inF / 8));
      expect(scale.length).toBe(outF * groups);
      const back = dequantizeQ4(q, scale, outF, inF, gs);
      for (let o = 0; o < outF; o++) {
        for (let k = 0; k < inF; k++) {
          const s = scale[o * groups + Math.floor(k / gs)];
          const err = Math.abs(back[o * inF + k] - w[o * inF + k]);
          expect(err, `(${outF},${inF},${gs}) row ${o} col ${k}`).toBeLessThanOrEqual(s * 0.5 * (1 + 1e-5) + 1e-12);
        }
      }
      // Each group's largest magnitude is represented exactly (to f32 rounding).
      for (let o = 0; o < outF; o++) {
        let amax = 0;
        for (let k = 0; k < Math.min(gs, inF); k++) amax = Math.max(amax, Math.abs(w[o * inF + k]));
        expect(scale[o * groups]).toBeCloseTo(amax / 7, 7);
      }
    }
  });

  it('checks the group size against the ops.ts contract', () => {
    expect(isValidQ4GroupSize(48, 32)).toBe(false); // 48 % 32 != 0
    expect(isValidQ4GroupSize(48, 24)).toBe(true);
    expect(isValidQ4GroupSize(48, 12)).toBe(false); // not a multiple of 8
    expect(chooseQ4GroupSize(48, 32)).toBe(24);
    expect(chooseQ4GroupSize(576)).toBe(64);
    expect(chooseQ4GroupSize(12288)).toBe(64);
    expect(chooseQ4GroupSize(13, 64)).toBe(16);
    expect(() => quantizeQ4(new Float32Array(48), 1, 48, 32)).toThrow(/chooseQ4GroupSize\(48\) gives 48/);
  });
});
