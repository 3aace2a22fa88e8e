// generate / generateBatch on the tiny model (stock ops, real WebGPU): the streamed tokens
// match a plain greedy loop without cache, stop ids, token limits, cancellation, seeding,
// and no tensors left behind.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngineBackend } from '../../src/engine/backend';
import { generate, generateBatch, type GenerateEvent, type GenerateOptions } from '../../src/engine/generate/generate';
import { argmax } from '../../src/engine/generate/sampling';
import type { ModelInputs } from '../../src/engine/inputs';
import type { GpuWeights } from '../../src/engine/load/gpu_weights';
import { Idefics3Model } from '../../src/engine/model/vlm';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import { tinyConfig, tinyInputs, tinyWeights } from '../util/tiny_config';

const config = tinyConfig();
let weights: GpuWeights;
let model: Idefics3Model;
const prompt = tinyInputs(config, { nTiles: 1, seed: 3 });

async function collect(inputs: ModelInputs, opts: GenerateOptions, onEvent?: (e: GenerateEvent) => void): Promise<GenerateEvent[]> {
  const events: GenerateEvent[] = [];
  for await (const e of generate(model, inputs, opts)) {
    events.push(e);
    onEvent?.(e);
  }
  return events;
}
const tokensOf = (events: GenerateEvent[]) => events.flatMap((e) => (e.token === null ? [] : [e.token]));

beforeAll(async () => {
  await initEngineBackend();
  weights = tinyWeights(config, 'f32', 13);
  model = new Idefics3Model(weights, createStockOps());
});
afterAll(() => weights?.dispose());

describe('generate', () => {
  it('greedy tokens equal a greedy loop of full forward passes without cache', async () => {
    const n = 6;
    const events = await collect(prompt, { maxNewTokens: n });
    const ids = Array.from(prompt.inputIds);
    const ref: number[] = [];
    for (let i = 0; i < n; i++) {
      const { logits } = model.forward({ ...prompt, inputIds: Int32Array.from(ids) }, { logits: 'last' });
      const tok = argmax((await logits.data()) as Float32Array);
      logits.dispose();
      ref.push(tok);
      ids.push(tok);
    }
    expect(tokensOf(events)).toEqual(ref);
    expect(events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(events.map((e) => e.done)).toEqual([false, false, false, false, false, true]);
    expect(events[n - 1].reason).toBe('max_tokens');
    expect(events[n - 1].prefillMs).toBeGreaterThan(0);
  });

  it('stops at a stop id and yields it as the last token', async () => {
    const free = tokensOf(await collect(prompt, { maxNewTokens: 8, sampling: { temperature: 1.5, seed: 4 } }));
    // the first token that did not already appear earlier: generation must stop right there
    const at = free.findIndex((t, i) => i > 0 && free.indexOf(t) === i);
    expect(at).toBeGreaterThan(0);
    const events = await collect(prompt, { maxNewTokens: 8, sampling: { temperature: 1.5, seed: 4 }, stopIds: [free[at], 9999] });
    expect(tokensOf(events)).toEqual(free.slice(0, at + 1));
    expect(events.at(-1)!.done).toBe(true);
    expect(events.at(-1)!.reason).toBe('stop_token');
  });

  it('respects maxNewTokens, including 0', async () => {
    expect(tokensOf(await collect(prompt, { maxNewTokens: 3, sampling: { temperature: 1, seed: 1 } }))).toHaveLength(3);
    const none = await collect(prompt, { maxNewTokens: 0 });
    expect(none).toEqual([expect.objectContaining({ token: null, done: true, reason: 'max_tokens' })]);
    // the context limit caps the answer, and a prompt that already fills it is refused
    const short = tinyWeights(tinyConfig({ lm_max_position: prompt.inputIds.length + 2 }), 'f32', 13);
    try {
      const m = new Idefics3Model(short, createStockOps());
      const capped: number[] = [];
      for await (const e of generate(m, prompt, { maxNewTokens: 10 })) if (e.token !== null) capped.push(e.token);
      expect(capped).toHaveLength(2);
      const long = { ...prompt, inputIds: Int32Array.from([...prompt.inputIds, 5, 6]) };
      const n = long.inputIds.length;
      await expect(generate(m, long, { maxNewTokens: 1 }).next()).rejects.toThrow(`prompt is ${n} tokens (images included), the model's context holds ${n}`);
    } finally {
      short.dispose();
    }
  });

  it('cancels through an AbortSignal, before or during generation', async () => {
    const ctl = new AbortController();
    const events = await collect(prompt, { maxNewTokens: 20, signal: ctl.signal }, (e) => {
      if (e.index === 1) ctl.abort();
    });
    expect(tokensOf(events)).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ token: null, done: true, reason: 'cancelled', index: 2 });
    const pre = new AbortController();
    pre.abort();
    const nothing = await collect(prompt, { maxNewTokens: 5, signal: pre.signal });
    expect(nothing).toEqual([expect.objectContaining({ token: null, reason: 'cancelled' })]);
  });

  it('the same seed gives the same sampled tokens, another seed others', async () => {
    const run = async (seed: number) =>
      tokensOf(await collect(prompt, { maxNewTokens: 8, sampling: { temperature: 2, topP: 0.99, seed } }));
    const a = await run(5);
    expect(await run(5)).toEqual(a);
    expect(await run(6)).not.toEqual(a);
  });

  it('leaves no tensors behind, also when the consumer stops early', async () => {
    await collect(prompt, { maxNewTokens: 2 }); // warm-up
    const before = tf.memory().numTensors;
    await collect(prompt, { maxNewTokens: 4 });
    for await (const e of generate(model, prompt, { maxNewTokens: 10 })) if (e.index === 1) break; // early break
    const ctl = new AbortController();
    await collect(prompt, { maxNewTokens: 10, signal: ctl.signal }, () => ctl.abort());
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('generateBatch', () => {
  it('answers each sample as generate would with seed + i, in order, and stops on abort', async () => {
    const list = [prompt, tinyInputs(config, { nTiles: 1, seed: 41 }), tinyInputs(config, { nTiles: 2, seed: 42 })];
    const opts: GenerateOptions = { maxNewTokens: 4, sampling: { temperature: 1.2, seed: 100 } };
    const seen: number[] = [];
    const results = await generateBatch(model, list, opts, (i) => seen.push(i));
    expect(seen).toEqual([0, 1, 2]);
    for (let i = 0; i < list.length; i++) {
      const single = tokensOf(await collect(list[i], { ...opts, sampling: { ...opts.sampling, seed: 100 + i } }));
      expect(results[i].tokens).toEqual(single);
      expect(results[i].stopReason).toBe('max_tokens');
    }
    const ctl = new AbortController();
    const partial = await generateBatch(model, list, { ...opts, signal: ctl.signal }, (i) => {
      if (i === 0) ctl.abort();
    });
    expect(partial).toHaveLength(1);
  });
});
