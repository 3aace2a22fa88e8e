// HubSource's Cache Storage in a real browser, with a scripted fetch standing in for the Hub:
// the first read downloads (with progress) into the cache, the second is served offline, sizes
// are listed per repository, and deleting removes only that repository's files.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/engine/load/load_model';
import { cachedBytes, deleteCachedModel, HubSource, listCachedModels, MissingFileError, readText } from '../../src/engine/load/sources';

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

  it('remembers files the Hub does not have, so an offline reload still says "missing"', async () => {
    await deleteCachedModel(REPO);
    const f = hubFetch({ 'config.json': '{}' });
    const online = new HubSource(REPO, 'main', { fetchImpl: f.impl, baseDelayMs: 1 });
    await expect(online.fetchFile('chat_template.jinja')).rejects.toBeInstanceOf(MissingFileError);
    expect(await online.has('chat_template.jinja')).toBe(false);

    const offline = new HubSource(REPO, 'main', { fetchImpl: (async () => { throw new TypeError('offline'); }) as typeof fetch, retries: 0 });
    await expect(offline.fetchFile('chat_template.jinja')).rejects.toThrow(/chat_template\.jinja is missing .*remembered/);
    expect(await offline.has('chat_template.jinja')).toBe(false);
    // a file never asked for is still a network error offline, not a false "missing"
    await expect(offline.fetchFile('tokenizer.json')).rejects.toThrow(/could not fetch/);
    await deleteCachedModel(REPO);
  });

  it('loads a whole model offline once it was downloaded', async () => {
    await deleteCachedModel(REPO);
    const files: Record<string, Blob> = {};
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'processor_config.json', 'model.safetensors']) {
      files[f] = await (await fetch(`/models/tiny/${f}`)).blob();
    }
    const requested: string[] = [];
    const hub = (async (url: string | URL | Request) => {
      const name = String(url).split('/').pop()!;
      requested.push(name);
      const b = files[name];
      return b ? new Response(b, { headers: { 'content-length': String(b.size) } }) : new Response('no', { status: 404 });
    }) as typeof fetch;
    const first = await loadModel(new HubSource(REPO, 'main', { fetchImpl: hub, baseDelayMs: 1 }), { quantization: 'q8' });
    const firstBytes = first.weights.gpuBytes();
    first.weights.dispose();
    expect(requested).toContain('model.safetensors');

    const offline = new HubSource(REPO, 'main', { fetchImpl: (async () => { throw new TypeError('offline'); }) as typeof fetch, retries: 0 });
    const again = await loadModel(offline, { quantization: 'q8' });
    expect(again.config.lm_hidden_dim).toBe(first.config.lm_hidden_dim);
    expect(again.weights.gpuBytes()).toBe(firstBytes);
    again.weights.dispose();
    await deleteCachedModel(REPO);
  });
});
