// Autoregressive generation on top of Idefics3Model: one prefill over image + prompt into a KV
// cache on the GPU, then one T=1 decode step per token. Per step the only GPU->CPU transfer
// is the (V) logits row the sampler needs. Awaiting that read also yields to the event loop,
// so an AbortSignal fired between steps is seen before the next step starts.
//
// generateBatch answers many samples in a row (evaluation, self-captioning): one sample at a
// time through generate(), sharing nothing but the model. Batched decoding with padding would
// raise throughput on a real GPU; the model's forward already takes padded batches, the loop
// here does not use them yet.
import type * as tf from '@tensorflow/tfjs';
import type { ModelInputs } from '../inputs';
import type { Idefics3Model } from '../model/vlm';
import { createSampler, type SamplingOptions } from './sampling';

export type StopReason = 'stop_token' | 'max_tokens' | 'cancelled';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Default greedy. */
  sampling?: SamplingOptions;
  /** Token ids that end the answer (end_of_utterance, eos); the stop token is yielded, marked done. */
  stopIds?: readonly number[];
  signal?: AbortSignal;
}

export interface GenerateEvent {
  /** The new token id; null only in a final event that carries no token (cancelled, or maxNewTokens 0). */
  token: number | null;
  /** 0-based index of this token among the generated ones (= tokens generated before it). */
  index: number;
  done: boolean;
  /** Why generation ended; null while it continues. */
  reason: StopReason | null;
  /** Milliseconds from the start to the first logits (vision + prompt prefill). */
  prefillMs: number;
  /** Decode speed so far: tokens after the first, per second of decode time (0 before any). */
  tokensPerSecond: number;
}

/** Stream tokens for one prompt. The KV cache lives on the GPU and is freed when the generator ends. */
export async function* generate(model: Idefics3Model, inputs: ModelInputs, opts: GenerateOptions): AsyncGenerator<GenerateEvent> {
  const stop = new Set(opts.stopIds ?? []);
  const sample = createSampler(opts.sampling ?? {});
  // RoPE has no hard limit, but past lm_max_position the model leaves what it was trained on
  const room = model.config.lm_max_position - inputs.inputIds.length;
  if (room <= 0) {
    throw new Error(
      `generate: the prompt is ${inputs.inputIds.length} tokens (images included), the model's context holds ${model.config.lm_max_position} (config max_position_embeddings); shorten the prompt or use fewer image tiles`,
    );
  }
  const maxNew = Math.max(0, Math.min(opts.maxNewTokens, room));
  const t0 = performance.now();
  let prefillMs = 0;
  let decodeStart = 0;
  let generated = 0;
  // decode speed: tokens after the first over the time since the first was ready
  const tokensPerSecond = () => {
    const dt = (performance.now() - decodeStart) / 1000;
    return generated > 1 && dt > 0 ? (generated - 1) / dt : 0;
  };
  const final = (reason: StopReason): GenerateEvent => ({
    token: null,
    index: generated,
    done: true,
    reason,
    prefillMs,
    tokensPerSecond: tokensPerSecond(),
  });
  if (maxNew === 0) {
    yield final(opts.signal?.aborted ? 'cancelled' : 'max_tokens');
    return;
  }

  const cache = model.newCache(1);
  try {
    let step: { inputIds: Int32Array; pixelValues?: Float32Array; nTiles?: number } = inputs;
    for (;;) {
      if (opts.signal?.aborted) {
        yield final('cancelled');
        return;
      }
      const { logits } = model.forward(step, { cache, logits: 'last' }); // (1, V)
      const row = await readRow(logits); // (V)
      if (generated === 0) {
        prefillMs = performance.now() - t0;
        decodeStart = performance.now();
      }
      const token = sample(row);
      generated++;
      const reason: StopReason | null = stop.has(token) ? 'stop_token' : generated >= maxNew ? 'max_tokens' : null;
      yield { token, index: generated - 1, done: reason !== null, reason, prefillMs, tokensPerSecond: tokensPerSecond() };
      if (reason) return;
      step = { inputIds: Int32Array.of(token) }; // (T=1), position continues in the cache
    }
  } finally {
    cache.dispose();
  }
}

export interface GenerateResult {
  tokens: number[];
  stopReason: StopReason;
  prefillMs: number;
  tokensPerSecond: number;
}

/**
 * Answer many prompts in a row. Sample i samples with seed `sampling.seed + i`, so its answer
 * does not depend on which samples ran before it. `onResult` sees each result as it finishes;
 * after an abort the remaining samples are not run and the returned list is shorter.
 */
export async function generateBatch(
  model: Idefics3Model,
  inputsList: readonly ModelInputs[],
  opts: GenerateOptions,
  onResult?: (i: number, r: GenerateResult) => void,
): Promise<GenerateResult[]> {
  const results: GenerateResult[] = [];
  for (let i = 0; i < inputsList.length; i++) {
    if (opts.signal?.aborted) break;
    const sampling = { ...opts.sampling, seed: (opts.sampling?.seed ?? 0) + i };
    const r: GenerateResult = { tokens: [], stopReason: 'max_tokens', prefillMs: 0, tokensPerSecond: 0 };
    for await (const ev of generate(model, inputsList[i], { ...opts, sampling })) {
      if (ev.token !== null) r.tokens.push(ev.token);
      r.prefillMs = ev.prefillMs;
      if (ev.tokensPerSecond > 0) r.tokensPerSecond = ev.tokensPerSecond;
      if (ev.done) r.stopReason = ev.reason ?? 'max_tokens';
    }
    results.push(r);
    onResult?.(i, r);
    if (r.stopReason === 'cancelled') break;
  }
  return results;
}

/** (1, V) logits -> Float32Array (V); disposes the tensor. */
async function readRow(logits: tf.Tensor2D): Promise<Float32Array> {
  try {
    return (await logits.data()) as Float32Array;
  } finally {
    logits.dispose();
  }
}
