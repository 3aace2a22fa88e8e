// Data mixing per stage: filters, the business:general ratio held within every epoch, fresh
// general draws between epochs, seeded orders, and the step arithmetic the run loop relies on.
import { describe, expect, it } from 'vitest';
import {
  drawGeneral,
  epochOrder,
  generalPerEpoch,
  mixSeed,
  passesFilter,
  planStages,
  stagePool,
  stepsPerEpoch,
  type MixSample,
} from '../../src/engine/train/mixing';
import type { DataKind, Split } from '../../src/lib/dataset/schema';

function sample(id: string, kind: DataKind, opts: { split?: Split; stage?: number; tags?: string[] } = {}): MixSample {
  return { id, kind, split: opts.split ?? 'train', stage: opts.stage ?? 1, tags: opts.tags ?? [] };
}

/** 100 business (stages 1 and 2 alternating), 30 general, plus val/test samples that must never appear. */
function dataset(): MixSample[] {
  const xs: MixSample[] = [];
  for (let i = 0; i < 100; i++) xs.push(sample(`b${i}`, 'business', { stage: 1 + (i % 2), tags: i % 10 === 0 ? ['hard'] : [] }));
  for (let i = 0; i < 30; i++) xs.push(sample(`g${i}`, i % 2 ? 'general_caption' : 'general_instruction'));
  for (let i = 0; i < 10; i++) xs.push(sample(`v${i}`, 'business', { split: 'val' }), sample(`t${i}`, 'general_caption', { split: 'test' }));
  return xs;
}

const count = (ids: string[], prefix: string) => ids.filter((id) => id.startsWith(prefix)).length;

describe('stage filters', () => {
  it('take train-split samples only, and every given criterion must hold', () => {
    const pool = stagePool(dataset(), {});
    expect(pool.business).toHaveLength(100);
    expect(pool.general).toHaveLength(30);
    expect(stagePool(dataset(), { stages: [2] }).business).toHaveLength(50);
    expect(stagePool(dataset(), { kinds: ['business'] }).general).toHaveLength(0);
    expect(stagePool(dataset(), { tags: ['hard'] }).business).toEqual(['b0', 'b10', 'b20', 'b30', 'b40', 'b50', 'b60', 'b70', 'b80', 'b90']);
    expect(passesFilter(sample('x', 'business', { stage: 1, tags: ['hard'] }), { stages: [2], tags: ['hard'] })).toBe(false);
  });

  it('the pool does not depend on the listing order', () => {
    const a = stagePool(dataset(), {});
    const b = stagePool([...dataset()].reverse(), {});
    expect(b).toEqual(a);
  });
});

describe('business:general ratio', () => {
  it('10:1 over an epoch: every business sample once, ceil(n/10) general, no repeats', () => {
    const pool = stagePool(dataset(), {});
    for (let epoch = 0; epoch < 5; epoch++) {
      const order = epochOrder(pool, 10, 42, 0, epoch);
      expect(count(order, 'b')).toBe(100);
      expect(new Set(order.filter((id) => id.startsWith('b'))).size).toBe(100);
      expect(count(order, 'g')).toBe(10);
      expect(new Set(order).size).toBe(order.length);
      expect(count(order, 'v') + count(order, 't')).toBe(0);
    }
    // ceil: 95 business at 10:1 -> 10 general.
    expect(generalPerEpoch(95, 30, 10)).toBe(10);
    expect(generalPerEpoch(100, 30, 0)).toBe(0); // 0 = no general data
    expect(generalPerEpoch(0, 30, 10)).toBe(30); // a general-only stage takes its whole pool
  });

  it('general draws are fresh between epochs: the pool is used up before any sample repeats', () => {
    const pool = stagePool(dataset(), {});
    const draws = [0, 1, 2].map((e) => drawGeneral(pool.general, 10, 7, 0, e));
    expect(draws[0]).not.toEqual(draws[1]);
    // 3 epochs x 10 = the 30-sample pool exactly: each general sample once.
    expect(new Set(draws.flat()).size).toBe(30);
    // Epochs 3..5 start a new cycle: all 30 again, in a different permutation.
    const next = [3, 4, 5].map((e) => drawGeneral(pool.general, 10, 7, 0, e));
    expect(new Set(next.flat()).size).toBe(30);
    expect(next.flat()).not.toEqual(draws.flat());
  });

  it('more general needed than the pool holds: repeats only then', () => {
    const d = drawGeneral(['g0', 'g1', 'g2'], 5, 1, 0, 0);
    expect(d).toHaveLength(5);
    expect(new Set(d.slice(0, 3)).size).toBe(3);
  });
});

describe('seeded order', () => {
  it('same seed, stage and epoch give the same order; any change gives another', () => {
    const pool = stagePool(dataset(), {});
    const a = epochOrder(pool, 10, 42, 0, 3);
    expect(epochOrder(pool, 10, 42, 0, 3)).toEqual(a);
    expect(epochOrder(pool, 10, 43, 0, 3)).not.toEqual(a);
    expect(epochOrder(pool, 10, 42, 1, 3)).not.toEqual(a);
    expect(epochOrder(pool, 10, 42, 0, 4)).not.toEqual(a);
    // Shuffled, not in id order.
    expect(a).not.toEqual([...a].sort());
  });

  it('mixSeed separates nearby inputs', () => {
    const seeds = new Set<number>();
    for (let s = 0; s < 4; s++) for (let e = 0; e < 50; e++) seeds.add(mixSeed(s, 0, e, 2));
    expect(seeds.size).toBe(200);
  });
});

describe('stages and steps', () => {
  it('plans each stage in order with its own pool and step count', () => {
    const plans = planStages(
      dataset(),
      [
        { name: 'bulk', filter: { stages: [1] }, epochs: 2, lr: 1e-4 },
        { name: 'hq', filter: { stages: [2], kinds: ['business'] }, epochs: 3, lr: 5e-5 },
      ],
      { businessToGeneral: 10, batchSize: 4, gradAccumulation: 2 },
    );
    // Stage 1: 50 business (stage 1) + 30 general pool (stage 1) -> 50 + 5 = 55 per epoch.
    expect(plans[0].epochSize).toBe(55);
    expect(plans[0].microPerEpoch).toBe(14); // ceil(55/4)
    expect(plans[0].stepsPerEpoch).toBe(7); // ceil(14/2)
    expect(plans[0].steps).toBe(14);
    // Stage 2: 50 business of stage 2, general excluded by its kinds filter.
    expect(plans[1].epochSize).toBe(50);
    expect(plans[1].pool.business.every((id) => Number(id.slice(1)) % 2 === 1)).toBe(true);
    expect(plans[1].steps).toBe(3 * Math.ceil(Math.ceil(50 / 4) / 2));
    expect(stepsPerEpoch(0, 4, 2)).toEqual({ micro: 0, steps: 0 });
  });
});
