// Next-token cross-entropy on answer tokens only, computed in chunks of rows so the (T, V)
// logits of a whole sequence never exist at once (SmolVLM's V = 49k: 1,000 tokens of f32
// logits are 200 MB, and autodiff would keep them, plus their softmax, until backward).
//
// HF convention (transformers ForCausalLMLoss): labels[t] is the token expected AT position t;
// the loss shifts, so the logits at t are scored against labels[t + 1] of the same row, and
// the last position of a row predicts nothing. Rows whose shifted label is -100 (user text,
// image tokens, role markers, padding) are dropped BEFORE the lm_head runs: only the M counted
// rows of the final hidden states ever meet it.
//
// The chunked op is a tf.customGrad over h (M, C): forward runs lm_head + log-softmax chunk by
// chunk and keeps only the scalar; backward recomputes each chunk's logits, forms
// dLogits = (softmax - onehot) * dy / M and returns dH = dLogits W. The lm_head is frozen:
// no gradient for it is formed.
//
// B batch, T tokens per row, M counted rows, C channels, V vocab, m rows in a chunk.
import * as tf from '@tensorflow/tfjs';
import type { ModelInputs } from '../inputs';
import type { ForwardInputs, Idefics3Model } from '../model/vlm';
import type { LinearWeight, Ops } from '../ops/ops';
import { dequantizeLinear } from '../ops/stock_ops';
import { linearBackwardInput } from '../kernels/linear';
import { IGNORE_INDEX } from '../processor/build_inputs';

/** Which rows of the (B*T) hidden states count, and the token each must predict. */
export interface LossTargets {
  rows: Int32Array; // (M) flat row index b*T + t
  targets: Int32Array; // (M) labels[b*T + t + 1]
}

/** HF's shift on a (B, T) row-major label array: row t of each sequence predicts label t+1. */
export function lossTargets(labels: Int32Array, B: number, T: number): LossTargets {
  if (labels.length !== B * T) throw new Error(`lossTargets: labels has ${labels.length} entries, expected B*T = ${B}*${T}`);
  const rows: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const y = labels[b * T + t + 1];
      if (y === IGNORE_INDEX) continue;
      rows.push(b * T + t);
      targets.push(y);
    }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

/** Rows per chunk: about 4M logits (16 MB of f32) per chunk, at least 1 row. */
export function defaultChunkRows(V: number): number {
  return Math.max(1, Math.floor(4_194_304 / V));
}

export interface ChunkOptions {
  /** Rows of logits computed at once (default: defaultChunkRows(V)). */
  chunkRows?: number;
}

function checkTargets(targets: Int32Array, V: number): void {
  for (let i = 0; i < targets.length; i++) {
    const y = targets[i];
    if (!(y >= 0 && y < V)) throw new Error(`cross-entropy: target ${i} is token id ${y}, outside the vocabulary 0..${V - 1}`);
  }
}

/**
 * dH (m, C) = dLogits (m, V) W (V, C) for the frozen lm_head. The custom path runs our dX
 * kernel, which decodes a quantized W in registers (no f32 copy of the (V, C) head); the stock
 * path multiplies by the dequantized f32 head, made once per backward by the caller.
 */
function headInputGrad(dLogits: tf.Tensor2D, lmHead: LinearWeight, wF32: tf.Tensor2D | null): tf.Tensor2D {
  return wF32 ? tf.matMul(dLogits, wF32) : linearBackwardInput(dLogits, lmHead); // (m, C)
}

/**
 * Mean next-token cross-entropy of the M rows h (M, C) against `targets` (M), through the
 * frozen `lmHead` (V, C). Differentiable with respect to h; memory O(chunkRows * V).
 * M = 0 gives a constant 0 (nothing to learn from).
 */
export function chunkedCrossEntropy(
  h: tf.Tensor2D,
  targets: Int32Array,
  lmHead: LinearWeight,
  ops: Ops,
  opts: ChunkOptions = {},
): tf.Scalar {
  const [M, C] = h.shape;
  const V = lmHead.outF;
  if (targets.length !== M) throw new Error(`cross-entropy: ${M} rows of hidden states but ${targets.length} targets`);
  if (C !== lmHead.inF) throw new Error(`cross-entropy: hidden states have ${C} channels, lm_head expects ${lmHead.inF}`);
  checkTargets(targets, V);
  if (M === 0) return tf.scalar(0);
  const m = opts.chunkRows ?? defaultChunkRows(V);
  const starts: number[] = [];
  for (let s = 0; s < M; s += m) starts.push(s);

  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const hh = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    save([hh]);
    const value = tf.tidy(() => {
      let sum: tf.Tensor = tf.scalar(0);
      for (const s of starts) {
        const n = Math.min(m, M - s);
        const next = tf.tidy(() => {
          const logits = ops.linear(hh.slice([s, 0], [n, C]), lmHead); // (n, V)
          const lse = tf.logSumExp(logits, 1); // (n)
          const onehot = tf.oneHot(tf.tensor1d(targets.subarray(s, s + n), 'int32'), V); // (n, V)
          const picked = tf.sum(tf.mul(logits, onehot), 1); // (n)
          return tf.add(sum, tf.sum(tf.sub(lse, picked)));
        });
        sum.dispose();
        sum = next;
      }
      return tf.div(sum, M) as tf.Scalar;
    });
    const gradFunc = (dyS: tf.Scalar, saved: tf.Tensor[]): tf.Tensor => {
      const [hs] = saved as [tf.Tensor2D];
      return tf.tidy(() => {
        // stock path: the frozen lm_head as f32, once per backward (a temporary copy, freed below)
        const wF32 = ops.name === 'custom' ? null : dequantizeLinear(lmHead); // (V, C)
        const coef = tf.div(dyS, M); // d mean / d sum
        const parts: tf.Tensor2D[] = [];
        for (const s of starts) {
          const n = Math.min(m, M - s);
          parts.push(
            tf.tidy(() => {
              const logits = ops.linear(hs.slice([s, 0], [n, C]), lmHead); // (n, V), recomputed
              const onehot = tf.oneHot(tf.tensor1d(targets.subarray(s, s + n), 'int32'), V); // (n, V)
              const dLogits = tf.mul(tf.sub(tf.softmax(logits, 1), onehot), coef) as tf.Tensor2D; // (n, V)
              return headInputGrad(dLogits, lmHead, wF32); // (n, C)
            }),
          );
        }
        return parts.length === 1 ? parts[0] : tf.concat(parts, 0); // (M, C)
      });
    };
    return { value, gradFunc };
  });
  return op(h) as tf.Scalar;
}

/** Per-row negative log-likelihood (M), no gradient; chunked like chunkedCrossEntropy. */
export function tokenNll(h: tf.Tensor2D, targets: Int32Array, lmHead: LinearWeight, ops: Ops, opts: ChunkOptions = {}): tf.Tensor1D {
  const [M, C] = h.shape;
  const V = lmHead.outF;
  if (targets.length !== M) throw new Error(`tokenNll: ${M} rows of hidden states but ${targets.length} targets`);
  checkTargets(targets, V);
  if (M === 0) return tf.zeros([0]) as tf.Tensor1D;
  const m = opts.chunkRows ?? defaultChunkRows(V);
  return tf.tidy(() => {
    const parts: tf.Tensor1D[] = [];
    for (let s = 0; s < M; s += m) {
      const n = Math.min(m, M - s);
      parts.push(
        tf.tidy(() => {
          const logits = ops.linear(h.slice([s, 0], [n, C]), lmHead); // (n, V)
          const onehot = tf.oneHot(tf.tensor1d(targets.subarray(s, s + n), 'int32'), V); // (n, V)
          return tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, onehot), 1)) as tf.Tensor1D; // (n)
        }),
      );
    }
    return parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor1D);
  });
}

/** A padded batch: inputs for the model plus the loss targets. */
export interface CollatedBatch {
  inputs: ForwardInputs; // batch B, (B*T) ids, attention mask when padded
  B: number;
  T: number;
  targets: LossTargets;
  /** (B) counted tokens per row, to split losses per sample. */
  rowTokens: Int32Array;
}

/**
 * Pads samples to the longest (right padding with `padId`, labels -100, attentionMask 0) and
 * concatenates their image tiles in row order, which is the order the model's image-token
 * merge reads them in. Every sample must carry labels.
 */
export function collateBatch(samples: readonly ModelInputs[], padId: number): CollatedBatch {
  if (samples.length === 0) throw new Error('collateBatch: empty batch');
  const B = samples.length;
  const T = Math.max(...samples.map((s) => s.inputIds.length));
  const ids = new Int32Array(B * T).fill(padId); // (B, T)
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX); // (B, T)
  const mask = new Int32Array(B * T); // (B, T)
  let nTiles = 0;
  let pxLen = 0;
  samples.forEach((s, b) => {
    if (!s.labels) throw new Error(`collateBatch: sample ${b + 1} of ${B} has no labels (build it with mode 'train')`);
    if (s.labels.length !== s.inputIds.length) {
      throw new Error(`collateBatch: sample ${b + 1} has ${s.inputIds.length} ids but ${s.labels.length} labels`);
    }
    ids.set(s.inputIds, b * T);
    labels.set(s.labels, b * T);
    mask.fill(1, b * T, b * T + s.inputIds.length);
    nTiles += s.nTiles;
    pxLen += s.nTiles > 0 ? s.pixelValues.length : 0;
  });
  const pixelValues = new Float32Array(pxLen); // (N, 3, H, W), rows in order
  let off = 0;
  for (const s of samples) {
    if (s.nTiles === 0) continue;
    pixelValues.set(s.pixelValues, off);
    off += s.pixelValues.length;
  }
  const padded = samples.some((s) => s.inputIds.length < T);
  const inputs: ForwardInputs = { inputIds: ids, batch: B, nTiles, pixelValues: nTiles > 0 ? pixelValues : undefined };
  if (padded) inputs.attentionMask = mask;
  const targets = lossTargets(labels, B, T);
  const rowTokens = new Int32Array(B);
  for (const r of targets.rows) rowTokens[Math.floor(r / T)]++;
  return { inputs, B, T, targets, rowTokens };
}

/**
 * The training loss of a collated batch: mean CE over all its counted tokens (HF's batch
 * mean), differentiable with respect to whatever the model's adapters train.
 */
export function batchLoss(model: Idefics3Model, batch: CollatedBatch, opts: ChunkOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    const h = model.hiddenStates(batch.inputs); // (B*T, C)
    const hSel = tf.gather(h, tf.tensor1d(batch.targets.rows, 'int32')) as tf.Tensor2D; // (M, C)
    return chunkedCrossEntropy(hSel, batch.targets.targets, model.weights.linear('lm_head'), model.ops, opts);
  });
}

/** The id padding uses: the config's pad token, else eos, else 0 (masked either way). */
export function padTokenId(c: { pad_token_id: number | null; eos_token_id: number | null }): number {
  return c.pad_token_id ?? c.eos_token_id ?? 0;
}

/**
 * Mean CE and token count of each sample (evaluation, perplexity = exp(loss)), one forward
 * over the padded batch, no gradients. A sample without answer tokens reports loss NaN, tokens 0.
 */
export async function perSampleLoss(
  model: Idefics3Model,
  samples: readonly ModelInputs[],
  opts: ChunkOptions = {},
): Promise<{ loss: number; tokens: number }[]> {
  const batch = collateBatch(samples, padTokenId(model.config));
  const nll = tf.tidy(() => {
    const h = model.hiddenStates(batch.inputs); // (B*T, C)
    const hSel = tf.gather(h, tf.tensor1d(batch.targets.rows, 'int32')) as tf.Tensor2D; // (M, C)
    return tokenNll(hSel, batch.targets.targets, model.weights.linear('lm_head'), model.ops, opts); // (M)
  });
  const vals = (await nll.data()) as Float32Array;
  nll.dispose();
  const sums = new Float64Array(batch.B);
  batch.targets.rows.forEach((r, i) => (sums[Math.floor(r / batch.T)] += vals[i]));
  return Array.from(sums, (s, b) => ({ loss: batch.rowTokens[b] > 0 ? s / batch.rowTokens[b] : NaN, tokens: batch.rowTokens[b] }));
}
