// EngineService driven directly (no worker): load the built-in tiny model from /models/tiny/
// (written by `npm run fixtures`), generate, cancel, errors, and GPU memory coming back on
// unload. The same class runs inside the worker (engine_service_worker.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { EngineService } from '../../src/engine/engine_service';
import type { GenerateRequest, LoadProgress, ModelSourceSpec, TokenEvent } from '../../src/lib/api/engine_api';

const TINY: ModelSourceSpec = { kind: 'builtin', name: 'tiny' };

/** A real PNG: a 40x30 red-to-blue gradient (not square, so resizing and padding run). */
async function gradientPng(): Promise<Blob> {
  const c = new OffscreenCanvas(40, 30);
  const g = c.getContext('2d')!;
  const img = g.createImageData(40, 30);
  for (let y = 0; y < 30; y++)
    for (let x = 0; x < 40; x++) img.data.set([255 - x * 6, y * 4, x * 6, 255], (y * 40 + x) * 4);
  g.putImageData(img, 0, 0);
  return c.convertToBlob({ type: 'image/png' });
}

function request(image: Blob, maxNewTokens: number, over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    turns: [{ role: 'user', text: '<image>What is in this picture?' }],
    images: [image],
    maxNewTokens,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
    ...over,
  };
}

describe('EngineService with the tiny model', () => {
  const engine = new EngineService();
  let image: Blob;
  /** The greedy answer of our kernels on f32 weights, for the stock-ops comparison. */
  let greedyText = '';
  /** What stays on the GPU with no model: constant tables kernels cache (RoPE frequencies). */
  let residualBytes = -1;

  beforeAll(async () => {
    image = await gradientPng();
  });
  afterAll(async () => {
    await engine.unloadModel();
  });

  it('reports the GPU and uses no GPU memory before a model is loaded', async () => {
    const report = await engine.gpuReport();
    expect(report.available, report.reason).toBe(true);
    expect(await engine.gpuMemoryBytes()).toBe(0);
    expect(await engine.modelInfo()).toBeNull();
  });

  it('refuses to generate without a model, saying so', async () => {
    await expect(engine.generate(request(image, 2))).rejects.toThrow(/No model is loaded/);
  });

  it('loads the tiny model with per-file progress and reports what it holds', async () => {
    const events: LoadProgress[] = [];
    const info = await engine.loadModel(TINY, 'f32', (p) => events.push(p));
    expect(info.id).toBe('tiny');
    expect(info.quantization).toBe('f32');
    expect(info.ops).toBe('custom');
    expect(info.vocabSize).toBe(347);
    expect(info.imageSize).toBe(32);
    expect(info.imageSeqLen).toBe(4); // (32/8)^2 / 2^2
    expect(info.params).toBeGreaterThan(50_000);
    expect(info.summary).toContain('text 2x48');
    expect(await engine.modelInfo()).toEqual(info);

    const files = new Set(events.map((e) => e.file));
    expect(files).toContain('config.json');
    expect(files).toContain('tokenizer.json');
    expect(files).toContain('model.safetensors');
    const weights = events.filter((e) => e.file === 'model.safetensors');
    expect(weights.some((e) => e.phase === 'weights')).toBe(true);
    const last = weights[weights.length - 1];
    expect(last.phase).toBe('done');
    expect(last.loaded).toBe(last.total);
    expect(last.total).toBe((await (await fetch('/models/tiny/model.safetensors')).blob()).size);

    const bytes = await engine.gpuMemoryBytes();
    expect(bytes).toBeGreaterThanOrEqual(info.gpuBytes);
    // f32: every parameter on the GPU as 4 bytes
    expect(info.gpuBytes).toBe(info.params * 4);
  });

  it('streams a greedy answer, the same twice, without leaking tensors', async () => {
    const events: TokenEvent[] = [];
    const a = await engine.generate(request(image, 4), (t) => events.push(t));
    expect(a.tokens).toBeGreaterThan(0);
    expect(a.tokens).toBeLessThanOrEqual(4);
    expect(events.map((e) => e.index)).toEqual(Array.from({ length: a.tokens }, (_, i) => i));
    expect(events[events.length - 1].text).toBe(a.text);
    // each event's text extends as tokens arrive
    for (const e of events) expect(e.tokenId).toBeGreaterThanOrEqual(0);
    expect(a.stopReason === 'max_tokens' ? a.tokens === 4 : a.stopReason === 'stop_token').toBe(true);
    expect(a.prefillMs).toBeGreaterThan(0);
    if (a.tokens > 1) expect(a.tokensPerSecond).toBeGreaterThan(0);

    // Counted after the first run: kernels may cache small constant tensors on first use.
    const tensorsBefore = tf.memory().numTensors;
    const b = await engine.generate(request(image, 4));
    expect(b.text).toBe(a.text);
    expect(b.tokens).toBe(a.tokens);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    greedyText = a.text;
  });

  it('cancels mid-generation and stays usable', async () => {
    // Sampling at a high temperature keeps the random tiny model off its stop token for long.
    const sampled = request(image, 40, { sampling: { temperature: 5, topK: 0, topP: 1, seed: 7 } });
    const events: TokenEvent[] = [];
    const r = await engine.generate(sampled, (t) => {
      events.push(t);
      if (t.index === 1) void engine.cancel();
    });
    expect(r.stopReason).toBe('cancelled');
    expect(r.tokens).toBeGreaterThanOrEqual(2);
    expect(r.tokens).toBeLessThan(40);
    const again = await engine.generate(request(image, 2));
    expect(again.stopReason === 'cancelled').toBe(false);
  });

  it('runs one generation at a time', async () => {
    const first = engine.generate(request(image, 3));
    await expect(engine.generate(request(image, 3))).rejects.toThrow(/already running/);
    await expect(engine.loadModel(TINY, 'f32')).rejects.toThrow(/generation is running/);
    const r = await first;
    expect(r.tokens).toBeGreaterThan(0);
  });

  it('rejects a request whose images and placeholders disagree, naming both counts', async () => {
    await expect(engine.generate(request(image, 2, { images: [image, image] }))).rejects.toThrow(/1 <image> placeholder\(s\) but 2 image\(s\)/);
    await expect(engine.generate(request(new Blob(['not a png'], { type: 'image/png' }), 2))).rejects.toThrow(/image 1 of 1/);
    await expect(engine.generate(request(image, 0))).rejects.toThrow(/maxNewTokens/);
  });

  it('runs the stock tfjs reference ops on request, with the same greedy answer', async () => {
    const stock = await engine.loadModel(TINY, 'f32', undefined, 'stock');
    expect(stock.ops).toBe('stock');
    const r = await engine.generate(request(image, 4));
    expect(r.text).toBe(greedyText);
  });

  it('replacing the model frees the old one; unloading frees everything', async () => {
    const loadedBytes = await engine.gpuMemoryBytes();
    const q8 = await engine.loadModel(TINY, 'q8');
    expect(q8.quantization).toBe('q8');
    expect(q8.gpuBytes).toBeLessThan(q8.params * 4);
    const q8Bytes = await engine.gpuMemoryBytes();
    expect(q8Bytes).toBeLessThan(loadedBytes);
    const r = await engine.generate(request(image, 2));
    expect(r.tokens).toBeGreaterThan(0);

    await engine.unloadModel();
    expect(await engine.modelInfo()).toBeNull();
    residualBytes = await engine.gpuMemoryBytes();
    expect(residualBytes).toBeLessThan(1024);
    // a second load/generate/unload cycle leaves exactly as much behind
    await engine.loadModel(TINY, 'q4');
    await engine.generate(request(image, 2));
    await engine.unloadModel();
    expect(await engine.gpuMemoryBytes()).toBe(residualBytes);
    await expect(engine.generate(request(image, 2))).rejects.toThrow(/No model is loaded/);
  });

  it('names the missing file when a model path does not exist', async () => {
    const bad = { kind: 'builtin', name: 'no-such-model' } as unknown as ModelSourceSpec;
    await expect(engine.loadModel(bad, 'f32')).rejects.toThrow(/config\.json is missing from \/models\/no-such-model\//);
    expect(await engine.modelInfo()).toBeNull();
    expect(await engine.gpuMemoryBytes()).toBe(residualBytes);
  });

  it('names the missing weights file of a picked folder, and leaves nothing on the GPU', async () => {
    const names = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'processor_config.json'];
    const files = await Promise.all(
      names.map(async (n) => new File([await (await fetch(`/models/tiny/${n}`)).blob()], n)),
    );
    await expect(engine.loadModel({ kind: 'folder', files }, 'f32')).rejects.toThrow(/no weights in .*model\.safetensors/);
    expect(await engine.gpuMemoryBytes()).toBe(residualBytes);
  });
});
