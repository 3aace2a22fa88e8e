// A lost GPU device (driver reset, GPU process crash) invalidates every buffer. The engine must
// say so plainly, drop the model, and refuse GPU work instead of failing on dead buffers.
// The loss is provoked by destroying tfjs's device mid-generation; it runs in its own test
// file (its own page) because the device stays dead for the rest of the page.
import { describe, expect, it } from 'vitest';
import { EngineService } from '../../src/engine/engine_service';
import { webgpuBackend } from '../../src/engine/backend';

describe('EngineService when the GPU device is lost', () => {
  it('fails the running generation with the reason, unloads the model, and refuses new work', async () => {
    const c = new OffscreenCanvas(32, 32);
    c.getContext('2d')!.fillRect(4, 4, 20, 20);
    const image = await c.convertToBlob({ type: 'image/png' });
    const engine = new EngineService();
    await engine.loadModel({ kind: 'builtin', name: 'tiny' }, 'f32');

    const req = {
      turns: [{ role: 'user' as const, text: '<image>What shape?' }],
      images: [image],
      maxNewTokens: 30,
      sampling: { temperature: 5, topK: 0, topP: 1, seed: 1 },
    };
    const run = engine.generate(req, (t) => {
      if (t.index === 0) webgpuBackend().device.destroy();
    });
    await expect(run).rejects.toThrow(/GPU device was lost \(destroyed/);
    expect(await engine.modelInfo()).toBeNull();
    await expect(engine.generate(req)).rejects.toThrow(/GPU device was lost.*Reload the page/);
    await expect(engine.loadModel({ kind: 'builtin', name: 'tiny' }, 'f32')).rejects.toThrow(/GPU device was lost/);
    // the adapter report does not need the device and still answers
    expect((await engine.gpuReport()).available).toBe(true);
  });
});
