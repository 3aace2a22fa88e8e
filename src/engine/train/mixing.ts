// Which samples a training stage sees, epoch by epoch, and in what order (playbook §5, §6).
// Pure functions of (samples, stage, run seed, epoch): a resumed run recomputes exactly the
// order the interrupted one would have used, so data order needs no state beyond "which epoch".
//
// Per stage:
//   pool      = train-split samples passing the stage's filter
//   business  = the pool's business samples, ALL of them, every epoch
//   general   = ceil(nBusiness / businessToGeneral) samples drawn from the pool's general ones
//               (general_caption / general_instruction) per epoch, so 10:1 holds within an epoch
//   order     = business + drawn general, shuffled (seeded by run seed, stage, epoch)
// General draws come from one endless seeded stream: the general pool reshuffled once per
// "cycle" (seeded by run seed, stage, cycle), epoch e taking the next k entries. Consecutive
// epochs therefore see fresh general samples until the pool is used up, and no sample repeats
// inside an epoch unless k exceeds the pool (then repeats cannot be avoided).
// A pool with no business samples (a stage whose filter picks general data only) uses all of
// its samples: the stage asked for exactly those.
import type { StageSpec } from './train_types';
import type { DataKind, Split } from '../../lib/dataset/schema';
import { mulberry32, shuffleInPlace } from '../../lib/util/rng';

/** The sample fields mixing reads (a Sample satisfies it). */
export interface MixSample {
  id: string;
  split: Split;
  kind: DataKind;
  stage: number;
  tags: string[];
}

export const isGeneral = (kind: DataKind): boolean => kind !== 'business';

/**
 * Whether a sample passes a stage filter: each given criterion must hold (stage in `stages`,
 * kind in `kinds`, at least one tag in `tags`); an absent or empty criterion passes all.
 */
export function passesFilter(s: MixSample, filter: StageSpec['filter']): boolean {
  if (filter.stages && filter.stages.length > 0 && !filter.stages.includes(s.stage)) return false;
  if (filter.kinds && filter.kinds.length > 0 && !filter.kinds.includes(s.kind)) return false;
  if (filter.tags && filter.tags.length > 0 && !s.tags.some((t) => filter.tags!.includes(t))) return false;
  return true;
}

/** The stage's pool: train-split samples passing its filter, split by kind, in input order. */
export interface StagePool {
  business: string[];
  general: string[];
}

export function stagePool(samples: readonly MixSample[], filter: StageSpec['filter']): StagePool {
  const pool: StagePool = { business: [], general: [] };
  for (const s of samples) {
    if (s.split !== 'train' || !passesFilter(s, filter)) continue;
    (isGeneral(s.kind) ? pool.general : pool.business).push(s.id);
  }
  // Sort by id: the order must not depend on how the dataset happened to be listed.
  pool.business.sort();
  pool.general.sort();
  return pool;
}

/** General samples per epoch for `nBusiness` business samples at business:general = ratio (0 = none). */
export function generalPerEpoch(nBusiness: number, nGeneralPool: number, ratio: number): number {
  if (nGeneralPool === 0) return 0;
  if (nBusiness === 0) return nGeneralPool; // a general-only stage: all of it
  if (!(ratio > 0)) return 0;
  return Math.ceil(nBusiness / ratio);
}

/** Samples per epoch of a stage (the same every epoch). */
export function epochSize(pool: StagePool, ratio: number): number {
  return pool.business.length + generalPerEpoch(pool.business.length, pool.general.length, ratio);
}

/**
 * A 32-bit seed from several integers (run seed, stage, epoch, a purpose tag), mixed so that
 * nearby inputs give unrelated streams (a murmur3-style finaliser per part).
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let k = Math.imul(p | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const PURPOSE_GENERAL = 1;
const PURPOSE_ORDER = 2;

/** The general samples of epoch `epoch` (0-based): entries [e*k, (e+1)*k) of the endless stream. */
export function drawGeneral(general: readonly string[], k: number, seed: number, stage: number, epoch: number): string[] {
  const n = general.length;
  if (n === 0 || k === 0) return [];
  const out: string[] = [];
  let pos = epoch * k;
  let cycle = -1;
  let perm: string[] = [];
  while (out.length < k) {
    const c = Math.floor(pos / n);
    if (c !== cycle) {
      cycle = c;
      perm = shuffleInPlace([...general], mulberry32(mixSeed(seed, stage, c, PURPOSE_GENERAL)));
    }
    out.push(perm[pos - c * n]);
    pos++;
  }
  return out;
}

/** The sample ids of one epoch of one stage, in training order. */
export function epochOrder(pool: StagePool, ratio: number, seed: number, stage: number, epoch: number): string[] {
  const k = generalPerEpoch(pool.business.length, pool.general.length, ratio);
  const ids = [...pool.business, ...drawGeneral(pool.general, k, seed, stage, epoch)];
  return shuffleInPlace(ids, mulberry32(mixSeed(seed, stage, epoch, PURPOSE_ORDER)));
}

/** Micro-batches per epoch and optimiser steps per epoch (a last, shorter step takes the rest). */
export function stepsPerEpoch(nSamples: number, batchSize: number, gradAccumulation: number): { micro: number; steps: number } {
  const micro = Math.ceil(nSamples / batchSize);
  return { micro, steps: Math.ceil(micro / gradAccumulation) };
}

/** One stage's plan: pool, epoch size, steps. */
export interface StagePlan {
  pool: StagePool;
  epochSize: number;
  microPerEpoch: number;
  stepsPerEpoch: number;
  steps: number; // over all the stage's epochs
}

export function planStages(
  samples: readonly MixSample[],
  stages: readonly StageSpec[],
  opts: { businessToGeneral: number; batchSize: number; gradAccumulation: number },
): StagePlan[] {
  return stages.map((st) => {
    const pool = stagePool(samples, st.filter);
    const size = epochSize(pool, opts.businessToGeneral);
    const { micro, steps } = stepsPerEpoch(size, opts.batchSize, opts.gradAccumulation);
    return { pool, epochSize: size, microPerEpoch: micro, stepsPerEpoch: steps, steps: steps * st.epochs };
  });
}
