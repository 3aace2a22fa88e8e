// Hub models cached in Cache Storage, as the Model tab lists and deletes them. The browser here
// has no network, so the cache is seeded with the tiny model's files under the Hub URLs
// HubSource uses, as a first download would have left them.
import { afterAll, describe, expect, it } from 'vitest';
import { EngineService } from '../../src/engine/engine_service';
import { HubSource, MODEL_CACHE_NAME } from '../../src/engine/load/sources';

const REPO = 'test-owner/tiny-vlm';
const FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'processor_config.json', 'model.safetensors'];

async function seedCache(): Promise<number> {
  const cache = await caches.open(MODEL_CACHE_NAME);
  const hub = new HubSource(REPO);
  let bytes = 0;
  for (const f of FILES) {
    const blob = await (await fetch(`/models/tiny/${f}`)).blob();
    bytes += blob.size;
    await cache.put(hub.url(f), new Response(blob, { headers: { 'content-length': String(blob.size) } }));
  }
  return bytes;
}

describe('cached Hub models', () => {
  const engine = new EngineService();
  afterAll(async () => {
    await caches.delete(MODEL_CACHE_NAME);
  });

  it('lists a cached repository with its size and deletes it', async () => {
    const bytes = await seedCache();
    expect(await engine.cachedModels()).toEqual([{ repoId: REPO, bytes }]);
    await engine.deleteCachedModel(REPO);
    expect(await engine.cachedModels()).toEqual([]);
  });
});
