// Model sources with a scripted fetch: retries with backoff on network errors and 5xx, missing
// files named (404 and Vite's index.html fallback), progress from Content-Length, and the
// folder source's matching of picked files.
import { describe, expect, it } from 'vitest';
import { fetchWithRetry, FolderSource, HubSource, MissingFileError, readJson, readText, UrlSource } from '../../src/engine/load/sources';

type Answer = Response | Error;

/** A fetch that plays back answers in order and records the URLs asked for. */
function scriptedFetch(answers: Answer[]) {
  const urls: string[] = [];
  const impl = (async (url: string | URL | Request) => {
    urls.push(String(url));
    const a = answers.shift();
    if (!a) throw new Error('no more scripted answers');
    if (a instanceof Error) throw a;
    return a;
  }) as typeof fetch;
  return { impl, urls };
}

const html = () => new Response('<!doctype html><html></html>', { status: 200, headers: { 'content-type': 'text/html' } });
const body = (text: string, type = 'application/json') =>
  new Response(text, { status: 200, headers: { 'content-type': type, 'content-length': String(new TextEncoder().encode(text).byteLength) } });

describe('fetchWithRetry', () => {
  it('retries network errors and 5xx, then succeeds', async () => {
    const f = scriptedFetch([new TypeError('Failed to fetch'), new Response('', { status: 503 }), body('{}')]);
    const r = await fetchWithRetry('https://x/y', undefined, { fetchImpl: f.impl, baseDelayMs: 1 });
    expect(r.status).toBe(200);
    expect(f.urls).toHaveLength(3);
  });

  it('gives up after the retries with the last reason', async () => {
    const f = scriptedFetch([new Response('', { status: 502 }), new Response('', { status: 502 }), new Response('', { status: 500, statusText: 'Boom' })]);
    await expect(fetchWithRetry('https://x/y', undefined, { fetchImpl: f.impl, baseDelayMs: 1, retries: 2 })).rejects.toThrow(
      'could not fetch https://x/y after 3 attempts: HTTP 500 Boom',
    );
  });

  it('does not retry a 404', async () => {
    const f = scriptedFetch([new Response('', { status: 404 })]);
    expect((await fetchWithRetry('https://x/y', undefined, { fetchImpl: f.impl, baseDelayMs: 1 })).status).toBe(404);
    expect(f.urls).toHaveLength(1);
  });
});

describe('UrlSource', () => {
  it('treats an HTML fallback page as a missing file, naming it', async () => {
    const f = scriptedFetch([html()]);
    const src = new UrlSource('/models/tiny', { fetchImpl: f.impl });
    const err = await src.fetchFile('tokenizer.json').catch((e) => e);
    expect(err).toBeInstanceOf(MissingFileError);
    expect(err.message).toBe('file tokenizer.json is missing from /models/tiny/ (the server answered with an HTML page instead)');
    expect(f.urls).toEqual(['/models/tiny/tokenizer.json']);
  });

  it('names a 404 too, and reads a present file with progress', async () => {
    const f = scriptedFetch([new Response('nope', { status: 404 }), body('{"a": 1}')]);
    const src = new UrlSource('/m/', { fetchImpl: f.impl });
    await expect(src.fetchFile('config.json')).rejects.toThrow('file config.json is missing from /m/ (HTTP 404)');
    const seen: [number, number | null][] = [];
    const file = await src.fetchFile('config.json', (l, t) => seen.push([l, t]));
    expect(file.size).toBe(8);
    expect(await readJson(file, src.label)).toEqual({ a: 1 });
    expect(seen.at(-1)).toEqual([8, 8]);
  });

  it('reports HEAD answers through has()', async () => {
    const f = scriptedFetch([html(), body('')]);
    const src = new UrlSource('/m/', { fetchImpl: f.impl });
    expect(await src.has('chat_template.json')).toBe(false);
    expect(await src.has('config.json')).toBe(true);
  });
});

describe('HubSource (no Cache Storage in node: streams directly)', () => {
  it('builds resolve URLs and names missing files and gated repos', async () => {
    const f = scriptedFetch([new Response('', { status: 404 }), new Response('', { status: 401 }), body('hello', 'text/plain')]);
    const src = new HubSource('HuggingFaceTB/SmolVLM-256M-Instruct', 'main', { fetchImpl: f.impl, baseDelayMs: 1 });
    expect(src.url('config.json')).toBe('https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/config.json');
    await expect(src.fetchFile('chat_template.json')).rejects.toThrow(
      'file chat_template.json is missing from Hugging Face repository HuggingFaceTB/SmolVLM-256M-Instruct (main) (HTTP 404)',
    );
    await expect(src.fetchFile('model.safetensors')).rejects.toThrow(/HTTP 401: the repository is gated or private/);
    expect(await readText(await src.fetchFile('README.md'))).toBe('hello');
  });

  it('rejects a malformed repository id', () => {
    expect(() => new HubSource('not a repo')).toThrow(/"not a repo" is not a Hub repository id/);
  });
});

describe('FolderSource', () => {
  it('matches by name and reads Files as Blobs', async () => {
    const src = new FolderSource([new File(['{"x":2}'], 'config.json'), new File(['abc'], 'model.safetensors')]);
    expect(await src.has('config.json')).toBe(true);
    expect(await src.has('tokenizer.json')).toBe(false);
    const f = await src.fetchFile('config.json');
    expect(f.size).toBe(7);
    expect(f.body).toBeInstanceOf(Blob);
    expect(await readJson(f, src.label)).toEqual({ x: 2 });
    await expect(src.fetchFile('tokenizer.json')).rejects.toThrow('file tokenizer.json is missing from the picked files');
  });

  it('does not guess between two files with the same name', async () => {
    const a = new File(['1'], 'config.json');
    const b = new File(['2'], 'config.json');
    Object.defineProperty(a, 'webkitRelativePath', { value: 'm/config.json' });
    Object.defineProperty(b, 'webkitRelativePath', { value: 'm/sub/config.json' });
    const src = new FolderSource([a, b]);
    expect(src.label).toBe('the folder "m"');
    expect(await readText(await src.fetchFile('config.json'))).toBe('1'); // exact relative path wins
    expect(await readText(await src.fetchFile('sub/config.json'))).toBe('2');
    const c = new File(['3'], 'x.json');
    const d = new File(['4'], 'x.json');
    Object.defineProperty(c, 'webkitRelativePath', { value: 'm/a/x.json' });
    Object.defineProperty(d, 'webkitRelativePath', { value: 'm/b/x.json' });
    await expect(new FolderSource([c, d]).fetchFile('x.json')).rejects.toThrow(/file x\.json is missing/);
  });
});
