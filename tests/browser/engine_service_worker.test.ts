// The engine through its real boundary: the module worker started by startEngine(), every
// call and callback crossing comlink. Same tiny model as engine_service.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import { startEngine, type EngineProxy } from '../../src/lib/api/engine_client';
import type { GenerateRequest, LoadProgress, ModelSourceSpec, TokenEvent } from '../../src/lib/api/engine_api';

async function png(): Promise<Blob> {
  const c = new OffscreenCanvas(24, 36);
  const g = c.getContext('2d')!;
  g.fillStyle = '#2050c0';
  g.fillRect(0, 0, 24, 36);
  g.fillStyle = '#f0d020';
  g.fillRect(6, 10, 12, 12);
  return c.convertToBlob({ type: 'image/png' });
}

function request(image: Blob, maxNewTokens: number, temperature = 0): GenerateRequest {
  return {
    turns: [{ role: 'user', text: '<image>Describe the square.' }],
    images: [image],
    maxNewTokens,
    sampling: { temperature, topK: 0, topP: 1, seed: 3 },
  };
}

describe('the engine worker', () => {
  let engine: EngineProxy;
  let terminate: () => void;
  let image: Blob;

  beforeAll(async () => {
    ({ engine, terminate } = startEngine());
    image = await png();
  });
  afterAll(() => terminate());

  it('carries a loader error across comlink as an Error naming the file', async () => {
    const bad = { kind: 'builtin', name: 'missing-model' } as unknown as ModelSourceSpec;
    const err = await engine.loadModel(bad, 'f32').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/config\.json is missing from \/models\/missing-model\//);
    expect(await engine.modelInfo()).toBeNull();
  });

  it('loads the tiny model with progress sent back through a proxied callback', async () => {
    const events: LoadProgress[] = [];
    const info = await engine.loadModel({ kind: 'builtin', name: 'tiny' }, 'q8', Comlink.proxy((p: LoadProgress) => void events.push(p)));
    expect(info.id).toBe('tiny');
    expect(info.quantization).toBe('q8');
    expect(info.gpuBytes).toBeGreaterThan(0);
    expect(await engine.gpuMemoryBytes()).toBeGreaterThanOrEqual(info.gpuBytes);
    expect(events.some((e) => e.file === 'model.safetensors' && e.phase === 'done')).toBe(true);
    expect((await engine.gpuReport()).backend).toBe('webgpu');
  });

  it('streams tokens through the callback; greedy answers repeat exactly', async () => {
    const events: TokenEvent[] = [];
    const a = await engine.generate(request(image, 4), Comlink.proxy((t: TokenEvent) => void events.push(t)));
    expect(a.tokens).toBeGreaterThan(0);
    expect(events.length).toBe(a.tokens);
    expect(events[events.length - 1].text).toBe(a.text);
    const b = await engine.generate(request(image, 4));
    expect(b.text).toBe(a.text);
  });

  it('cancels a running generation from another call', async () => {
    let seen = 0;
    const running = engine.generate(
      request(image, 40, 5),
      Comlink.proxy((t: TokenEvent) => {
        seen = t.index + 1;
      }),
    );
    await expect(engine.generate(request(image, 2))).rejects.toThrow(/already running/);
    while (seen < 2) await new Promise((r) => setTimeout(r, 20));
    await engine.cancel();
    const r = await running;
    expect(r.stopReason).toBe('cancelled');
    expect(r.tokens).toBeLessThan(40);
  });

  it('unloading frees the model weights', async () => {
    const before = await engine.gpuMemoryBytes();
    await engine.unloadModel();
    const after = await engine.gpuMemoryBytes();
    expect(after).toBeLessThan(1024);
    expect(before - after).toBeGreaterThan(10_000);
    expect(await engine.modelInfo()).toBeNull();
  });
});
