import { describe, expect, it } from 'vitest';
import { mulberry32, shuffleInPlace } from '../../src/lib/util/rng';

describe('mulberry32', () => {
  it('repeats for the same seed and differs for another', () => {
    const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
    const xa = [a(), a(), a()], xb = [b(), b(), b()], xc = [c(), c(), c()];
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
    for (const x of xa) expect(x >= 0 && x < 1).toBe(true);
  });
  it('shuffles to a permutation', () => {
    const xs = shuffleInPlace([...Array(50).keys()], mulberry32(1));
    expect([...xs].sort((p, q) => p - q)).toEqual([...Array(50).keys()]);
    expect(xs).not.toEqual([...Array(50).keys()]);
  });
});
