// Bulk edits: a seeded random train/val/test split with exact counts, and setters for kind,
// stage and tags over many samples. All pure: they return changed copies for
// DatasetDb.updateSamples and never touch storage.

import { mulberry32, shuffleInPlace } from '../util/rng';
import type { DataKind, Sample, Split } from './schema';

export interface SplitRatios {
  train: number;
  val: number;
  test: number;
}

/**
 * Exact counts per split for n items: the ratios' shares rounded down, then the leftover
 * items go to the largest remainders (ties: train, val, test). 80/10/10 of 1000 -> 800/100/100.
 */
export function splitCounts(n: number, ratios: SplitRatios): Record<Split, number> {
  const keys: Split[] = ['train', 'val', 'test'];
  const w = keys.map((k) => Math.max(0, ratios[k]));
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error('split ratios must have a positive sum (e.g. 80/10/10)');
  const exact = w.map((x) => (x / total) * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = [0, 1, 2].sort((a, b) => exact[b] - counts[b] - (exact[a] - counts[a]) || a - b);
  for (let i = 0; left > 0; i = (i + 1) % 3, left--) counts[order[i]]++;
  return { train: counts[0], val: counts[1], test: counts[2] };
}

/**
 * Assigns each id a split. Deterministic for the same ids and seed whatever their order:
 * ids are sorted before the seeded shuffle.
 */
export function randomSplit(ids: readonly string[], ratios: SplitRatios, seed: number): Map<string, Split> {
  const c = splitCounts(ids.length, ratios);
  const order = shuffleInPlace([...ids].sort(), mulberry32(seed));
  const out = new Map<string, Split>();
  order.forEach((id, i) => out.set(id, i < c.train ? 'train' : i < c.train + c.val ? 'val' : 'test'));
  return out;
}

/** Copies of the samples with the splits from `splits` (others unchanged). */
export function applySplits(samples: readonly Sample[], splits: ReadonlyMap<string, Split>): Sample[] {
  return samples.map((s) => ({ ...s, split: splits.get(s.id) ?? s.split }));
}

export function setSplit(samples: readonly Sample[], split: Split): Sample[] {
  return samples.map((s) => ({ ...s, split }));
}

export function setKind(samples: readonly Sample[], kind: DataKind): Sample[] {
  return samples.map((s) => ({ ...s, kind }));
}

export function setStage(samples: readonly Sample[], stage: number): Sample[] {
  if (!Number.isInteger(stage) || stage < 1) throw new Error(`stage must be a whole number >= 1, got ${stage}`);
  return samples.map((s) => ({ ...s, stage }));
}

/** Adds the tags that a sample lacks (trimmed, blank ones ignored), keeping order. */
export function addTags(samples: readonly Sample[], tags: readonly string[]): Sample[] {
  const add = tags.map((t) => t.trim()).filter((t) => t !== '');
  return samples.map((s) => ({ ...s, tags: [...s.tags, ...add.filter((t, i) => !s.tags.includes(t) && add.indexOf(t) === i)] }));
}

export function removeTags(samples: readonly Sample[], tags: readonly string[]): Sample[] {
  const drop = new Set(tags.map((t) => t.trim()));
  return samples.map((s) => ({ ...s, tags: s.tags.filter((t) => !drop.has(t)) }));
}
