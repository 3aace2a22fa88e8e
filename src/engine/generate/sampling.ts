// Choosing the next token from one row of logits: greedy, temperature, top-k, top-p, seeded.
// Pure functions on a Float32Array (V), so they run and are tested in node; the GPU hands over
// only the last position's logits per step, which is (V) floats, cheap to read back.
//
// Order of filters follows HF `generate`: temperature scales the logits, then top-k keeps the
// k largest, then top-p keeps the smallest prefix (by descending probability, of what top-k
// left, renormalised) whose mass reaches p. Ties break toward the lower token id everywhere,
// so greedy decoding is deterministic across machines.
import { mulberry32, type Rng } from '../../lib/util/rng';

export interface SamplingOptions {
  /** 0 (default) = greedy. Otherwise logits are divided by it before the softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 or undefined = off. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches p; 1 or undefined = off. */
  topP?: number;
  /** Seed of the sampler's random stream; the same seed and logits give the same tokens. */
  seed?: number;
}

/** Index of the largest logit, lowest index on ties. NaN never wins. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bestV || (best < 0 && !Number.isNaN(v))) {
      best = i;
      bestV = v;
    }
  }
  if (best < 0) throw new Error(`argmax: all ${logits.length} logits are NaN`);
  return best;
}

/** Whether these options decode greedily (no randomness is drawn). */
export function isGreedy(opts: SamplingOptions): boolean {
  return !opts.temperature || opts.temperature <= 0 || opts.topK === 1;
}

/**
 * The candidate set after temperature, top-k and top-p, with renormalised probabilities,
 * in descending probability order (ties: lower id first). Exposed for tests and for UIs that
 * show the alternatives.
 */
export function candidates(logits: Float32Array, opts: SamplingOptions): { ids: Int32Array; probs: Float32Array } {
  const temperature = opts.temperature && opts.temperature > 0 ? opts.temperature : 1;
  const V = logits.length;
  const topK = opts.topK && opts.topK > 0 ? Math.min(opts.topK, V) : V;
  const topP = opts.topP !== undefined && opts.topP < 1 ? Math.max(opts.topP, 0) : 1;

  // (V) ids by descending logit. A full sort is O(V log V): ~3 ms for SmolVLM's 49k vocab,
  // negligible next to a decode step.
  const order = Array.from({ length: V }, (_, i) => i);
  order.sort((a, b) => logits[b] - logits[a] || a - b);
  const k = topK;
  // softmax over the top-k (numerically stable: subtract the max)
  const maxL = logits[order[0]] / temperature;
  const p = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const e = Math.exp(logits[order[i]] / temperature - maxL);
    p[i] = e;
    sum += e;
  }
  let keep = k;
  if (topP < 1) {
    let cum = 0;
    keep = 0;
    // the smallest prefix whose mass reaches p; always at least one token
    while (keep < k) {
      cum += p[keep] / sum;
      keep++;
      if (cum >= topP) break;
    }
  }
  let keptSum = 0;
  for (let i = 0; i < keep; i++) keptSum += p[i];
  const ids = new Int32Array(keep);
  const probs = new Float32Array(keep);
  for (let i = 0; i < keep; i++) {
    ids[i] = order[i];
    probs[i] = p[i] / keptSum;
  }
  return { ids, probs };
}

/** One token from the logits under the options; `rng` is drawn once unless decoding is greedy. */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  if (isGreedy(opts)) return argmax(logits);
  const { ids, probs } = candidates(logits, opts);
  const u = rng();
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += probs[i];
    if (u < cum) return ids[i];
  }
  // u within rounding of 1: the last kept token
  return ids[ids.length - 1];
}

/** A stateful sampler with its own seeded stream: one per generation, so runs repeat exactly. */
export function createSampler(opts: SamplingOptions): (logits: Float32Array) => number {
  const rng = mulberry32(opts.seed ?? 0);
  return (logits) => sampleToken(logits, opts, rng);
}
