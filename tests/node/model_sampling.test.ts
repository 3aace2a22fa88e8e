// Sampling: pure logic on Float32Array logits (node).
import { describe, expect, it } from 'vitest';
import { argmax, candidates, createSampler, sampleToken } from '../../src/engine/generate/sampling';
import { mulberry32, randn } from '../../src/lib/util/rng';

function randomLogits(V: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: V }, () => 3 * randn(rng));
}

describe('sampling', () => {
  it('argmax picks the largest, lowest index on ties, skips NaN', () => {
    expect(argmax(new Float32Array([0, 3, 1, 3]))).toBe(1);
    expect(argmax(new Float32Array([NaN, -5, -7]))).toBe(1);
    expect(argmax(new Float32Array([-Infinity, -Infinity]))).toBe(0);
    expect(() => argmax(new Float32Array([NaN]))).toThrow(/NaN/);
  });

  it('temperature 0 and top-k 1 are greedy', () => {
    for (let s = 0; s < 20; s++) {
      const logits = randomLogits(50, s);
      const g = argmax(logits);
      expect(sampleToken(logits, { temperature: 0 }, mulberry32(s))).toBe(g);
      expect(sampleToken(logits, {}, mulberry32(s))).toBe(g);
      expect(sampleToken(logits, { temperature: 1.5, topK: 1 }, mulberry32(s))).toBe(g);
      expect(candidates(logits, { temperature: 0.7, topK: 1 }).ids).toEqual(new Int32Array([g]));
    }
  });

  it('top-k keeps exactly the k largest logits', () => {
    const logits = randomLogits(40, 7);
    const { ids, probs } = candidates(logits, { temperature: 1, topK: 5 });
    const sorted = Array.from(logits).map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]);
    expect(Array.from(ids)).toEqual(sorted.slice(0, 5).map((x) => x[1]));
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // sampled tokens always belong to the kept set
    const rng = mulberry32(3);
    const kept = new Set(ids);
    for (let i = 0; i < 200; i++) expect(kept.has(sampleToken(logits, { temperature: 1, topK: 5 }, rng))).toBe(true);
  });

  it('top-p keeps the smallest set whose probability reaches p', () => {
    // probabilities 0.5, 0.25, 0.125, 0.125 (ids 2, 0, 1, 3)
    const logits = new Float32Array([Math.log(0.25), Math.log(0.125), Math.log(0.5), Math.log(0.125)]);
    expect(Array.from(candidates(logits, { temperature: 1, topP: 0.5 }).ids)).toEqual([2]);
    expect(Array.from(candidates(logits, { temperature: 1, topP: 0.6 }).ids)).toEqual([2, 0]);
    expect(Array.from(candidates(logits, { temperature: 1, topP: 0.75 }).ids)).toEqual([2, 0]);
    expect(Array.from(candidates(logits, { temperature: 1, topP: 0.8 }).ids)).toEqual([2, 0, 1]);
    const c = candidates(logits, { temperature: 1, topP: 0.6 });
    expect(c.probs[0]).toBeCloseTo(2 / 3, 5);
    expect(c.probs[1]).toBeCloseTo(1 / 3, 5);
    // top-k first, then top-p on the renormalised remainder: with k=2 the pair is (2/3, 1/3)
    expect(Array.from(candidates(logits, { temperature: 1, topK: 2, topP: 0.6 }).ids)).toEqual([2]);
    expect(Array.from(candidates(logits, { temperature: 1, topK: 2, topP: 0.7 }).ids)).toEqual([2, 0]);
  });

  it('temperature sharpens or flattens the distribution', () => {
    const logits = new Float32Array([2, 1, 0]);
    const cold = candidates(logits, { temperature: 0.5 }).probs[0];
    const warm = candidates(logits, { temperature: 2 }).probs[0];
    const base = candidates(logits, { temperature: 1 }).probs[0];
    expect(cold).toBeGreaterThan(base);
    expect(warm).toBeLessThan(base);
    expect(base).toBeCloseTo(Math.exp(2) / (Math.exp(2) + Math.exp(1) + 1), 5);
  });

  it('same seed gives the same tokens, another seed differs', () => {
    const rows = Array.from({ length: 30 }, (_, i) => randomLogits(64, 100 + i));
    const run = (seed: number) => {
      const s = createSampler({ temperature: 1.2, topK: 20, topP: 0.95, seed });
      return rows.map((r) => s(r));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('sampling frequencies follow the probabilities', () => {
    const logits = new Float32Array([Math.log(0.6), Math.log(0.3), Math.log(0.1)]);
    const counts = [0, 0, 0];
    const rng = mulberry32(11);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1 }, rng)]++;
    // 4-sigma bounds for a binomial with n=20000
    expect(Math.abs(counts[0] / n - 0.6)).toBeLessThan(0.015);
    expect(Math.abs(counts[1] / n - 0.3)).toBeLessThan(0.014);
    expect(Math.abs(counts[2] / n - 0.1)).toBeLessThan(0.009);
  });
});
