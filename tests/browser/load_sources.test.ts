// HubSource's Cache Storage in a real browser, with a scripted fetch standing in for the Hub:
// the first read downloads (with progress) into the cache, the second is served offline, sizes
// are listed per repository, and deleting removes only that repository's files.
import { afterAll, describe, expect, it } from 'vitest';
import { cachedBytes, deleteCachedModel, HubSource, listCachedModels, readText } from '../../src/engine/load/sources';

const REPO = 'test-org/cache-test';
const OTHER = 'test-org/other-model';

function hubFetch(files: Record<string, string>) {
  const urls: string[] = [];
  const impl = (async (url: string | URL | Request) => {
    const u = String(url);
    urls.push(u);
    const name = u.split('/').pop()!;
    if (!(name in files)) return new Response('not found', { status: 404 });
    const bytes = new TextEncoder().encode(files[name]);
    return new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.byteLength), 'content-type': 'application/octet-stream' } });
  }) as typeof fetch;
  return { impl, urls };
}

afterAll(async () => {
  await deleteCachedModel(REPO);
  await deleteCachedModel(OTHER);
});

describe('HubSource with Cache Storage', () => {
  it('downloads once, then serves from the cache; lists and deletes per repository', async () => {
    await deleteCachedModel(REPO);
    const f = hubFetch({ 'config.json': '{"model_type":"idefics3"}', 'model.safetensors': 'x'.repeat(1000) });
    const src = new HubSource(REPO, 'main', { fetchImpl: f.impl, baseDelayMs: 1 });
    const progress: [number, number | null][] = [];
    expect(await readText(await src.fetchFile('model.safetensors', (l, t) => progress.push([l, t])))).toBe('x'.repeat(1000));
    expect(progress.at(-1)).toEqual([1000, 1000]);
    expect(f.urls).toEqual([`https://huggingface.co/${REPO}/resolve/main/model.safetensors`]);

    // Second read: no network.
    const offline = new HubSource(REPO, 'main', { fetchImpl: (async () => { throw new TypeError('offline'); }) as typeof fetch, retries: 0 });
    expect(await readText(await offline.fetchFile('model.safetensors'))).toBe('x'.repeat(1000));
    expect(await offline.has('model.safetensors')).toBe(true);

    await readText(await src.fetchFile('config.json'));
    const other = new HubSource(OTHER, 'main', { fetchImpl: hubFetch({ 'config.json': '{}' }).impl });
    await readText(await other.fetchFile('config.json'));
    expect(await cachedBytes(REPO)).toBe(1000 + '{"model_type":"idefics3"}'.length);
    const listed = await listCachedModels();
    expect(listed).toContainEqual({ repoId: OTHER, bytes: 2 });

    await deleteCachedModel(REPO);
    expect(await cachedBytes(REPO)).toBe(0);
    expect(await cachedBytes(OTHER)).toBe(2);
    await expect(offline.fetchFile('model.safetensors')).rejects.toThrow(/could not fetch .* after 1 attempts: offline/);
  });
});
