// Where model files come from: a URL prefix (the built-in tiny model under /models/tiny/), the
// Hugging Face Hub (downloaded once into Cache Storage, then offline), or a folder the user
// picked. Uses only what module workers have (fetch, caches, Blob): no DOM.
//
// Every source answers a missing file with MissingFileError naming the file and the source, so
// the loader can tell "optional file absent" from "download failed", and the user sees which
// file is missing instead of a JSON parse error on "<" (Vite's dev server answers unknown
// paths with index.html and status 200).

/** One file as a source delivers it: a byte stream (read once) or a random-access Blob. */
export interface SourceFile {
  path: string;
  body: ReadableStream<Uint8Array> | Blob;
  /** Bytes, when the source knows (Content-Length, File.size). */
  size: number | null;
}

export type ProgressFn = (loaded: number, total: number | null) => void;

export interface ModelSource {
  /** Stable id, e.g. 'url:/models/tiny/', 'hub:HuggingFaceTB/SmolVLM-256M-Instruct@main'. */
  readonly id: string;
  /** Human-readable name for messages. */
  readonly label: string;
  fetchFile(path: string, onProgress?: ProgressFn): Promise<SourceFile>;
  has?(path: string): Promise<boolean>;
}

export class MissingFileError extends Error {
  constructor(
    readonly path: string,
    readonly sourceLabel: string,
    detail = '',
  ) {
    super(`file ${path} is missing from ${sourceLabel}${detail ? ` (${detail})` : ''}`);
    this.name = 'MissingFileError';
  }
}

// ---------------------------------------------------------------------------------------------
// reading helpers

export async function readText(f: SourceFile): Promise<string> {
  if (f.body instanceof Blob) return f.body.text();
  return new Response(f.body).text();
}

/** Parse a JSON file; a syntax error names the file and where. */
export async function readJson(f: SourceFile, sourceLabel: string): Promise<unknown> {
  const text = await readText(f);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${f.path} from ${sourceLabel} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Pass a stream through, reporting bytes as the consumer reads them. */
function countingStream(body: ReadableStream<Uint8Array>, total: number | null, onProgress: ProgressFn): ReadableStream<Uint8Array> {
  let loaded = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        loaded += chunk.byteLength;
        onProgress(loaded, total);
        ctrl.enqueue(chunk);
      },
    }),
  );
}

function contentLength(r: Response): number | null {
  const v = r.headers.get('content-length');
  const n = v === null ? NaN : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/** A 200 text/html answer for a non-HTML file is a dev server's fallback page, not the file. */
function isHtmlFallback(path: string, r: Response): boolean {
  return (r.headers.get('content-type') ?? '').includes('text/html') && !/\.html?$/i.test(path);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RetryOptions {
  retries?: number; // extra attempts after the first (default 3)
  baseDelayMs?: number; // doubles per attempt (default 500)
  fetchImpl?: typeof fetch;
}

/**
 * fetch with retries on network errors and 5xx answers (exponential backoff). Other answers
 * (including 404) are returned for the caller to judge.
 */
export async function fetchWithRetry(url: string, init: RequestInit | undefined, opts: RetryOptions = {}): Promise<Response> {
  const retries = opts.retries ?? 3;
  const base = opts.baseDelayMs ?? 500;
  const f = opts.fetchImpl ?? fetch;
  let lastError = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(base * 2 ** (attempt - 1));
    try {
      const r = await f(url, init);
      if (r.status < 500) return r;
      lastError = `HTTP ${r.status} ${r.statusText}`;
      await r.body?.cancel();
    } catch (e) {
      lastError = (e as Error).message || String(e);
    }
  }
  throw new Error(`could not fetch ${url} after ${retries + 1} attempts: ${lastError}`);
}

// ---------------------------------------------------------------------------------------------
// URL prefix

/** Files under a URL prefix, e.g. '/models/tiny/'. */
export class UrlSource implements ModelSource {
  readonly id: string;
  readonly label: string;
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly retry: RetryOptions = {},
  ) {
    this.base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.id = `url:${this.base}`;
    this.label = this.base;
  }

  async fetchFile(path: string, onProgress?: ProgressFn): Promise<SourceFile> {
    const r = await fetchWithRetry(this.base + path, undefined, this.retry);
    if (r.status === 404 || r.status === 410 || isHtmlFallback(path, r)) {
      await r.body?.cancel();
      throw new MissingFileError(path, this.label, r.ok ? 'the server answered with an HTML page instead' : `HTTP ${r.status}`);
    }
    if (!r.ok || !r.body) throw new Error(`file ${path} from ${this.label}: HTTP ${r.status} ${r.statusText}`);
    const size = contentLength(r);
    return { path, size, body: onProgress ? countingStream(r.body, size, onProgress) : r.body };
  }

  async has(path: string): Promise<boolean> {
    const r = await fetchWithRetry(this.base + path, { method: 'HEAD' }, this.retry);
    return r.ok && !isHtmlFallback(path, r);
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face Hub with Cache Storage

export const MODEL_CACHE_NAME = 'vlm-models';
const HUB = 'https://huggingface.co';

function hubPrefix(repoId: string): string {
  return `${HUB}/${repoId}/resolve/`;
}

/** Cache Storage, or null where it does not exist (insecure contexts, Node). */
async function openCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(MODEL_CACHE_NAME);
  } catch {
    return null;
  }
}

/** Header on a cached placeholder that records a file the Hub answered 404 for. */
const MISSING_MARK = 'x-vlm-missing';

/**
 * A Hub repository at a revision. Each file is downloaded once into Cache Storage (streamed to
 * the cache, never held whole in memory) and read from there, so a second load works offline.
 */
export class HubSource implements ModelSource {
  readonly id: string;
  readonly label: string;

  constructor(
    readonly repoId: string,
    readonly revision = 'main',
    private readonly retry: RetryOptions = {},
  ) {
    if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new Error(`"${repoId}" is not a Hub repository id (owner/name)`);
    this.id = `hub:${repoId}@${revision}`;
    this.label = `Hugging Face repository ${repoId} (${revision})`;
  }

  url(path: string): string {
    return `${hubPrefix(this.repoId)}${encodeURIComponent(this.revision)}/${path}`;
  }

  async fetchFile(path: string, onProgress?: ProgressFn): Promise<SourceFile> {
    const url = this.url(path);
    const cache = await openCache();
    const cached = await cache?.match(url);
    if (cached?.headers.has(MISSING_MARK)) throw new MissingFileError(path, this.label, 'HTTP 404, remembered from the first download');
    if (cached?.body) {
      const size = contentLength(cached);
      onProgress?.(size ?? 0, size);
      return { path, size, body: cached.body };
    }
    const r = await this.download(path, url, cache);
    const size = contentLength(r);
    if (!cache) return { path, size, body: onProgress ? countingStream(r.body!, size, onProgress) : r.body! };
    // Stream into the cache, then read back from it: the file never sits whole in JS memory.
    const counted = onProgress ? countingStream(r.body!, size, onProgress) : r.body!;
    await cache.put(url, new Response(counted, { headers: r.headers }));
    const stored = await cache.match(url);
    if (!stored?.body) throw new Error(`file ${path} from ${this.label}: could not be read back from the browser cache`);
    return { path, size, body: stored.body };
  }

  async has(path: string): Promise<boolean> {
    const cache = await openCache();
    const cached = await cache?.match(this.url(path));
    if (cached) return !cached.headers.has(MISSING_MARK);
    const r = await fetchWithRetry(this.url(path), { method: 'HEAD' }, this.retry);
    return r.ok;
  }

  private async download(path: string, url: string, cache: Cache | null): Promise<Response> {
    const r = await fetchWithRetry(url, undefined, this.retry);
    if (r.status === 404) {
      await r.body?.cancel();
      // Remember the absence: the loader probes optional files (chat_template.jinja, ...) on
      // every load, and offline those probes must answer "missing", not "network error".
      await cache?.put(url, new Response('', { status: 200, headers: { [MISSING_MARK]: '404', 'content-length': '0' } }));
      throw new MissingFileError(path, this.label, 'HTTP 404');
    }
    if (r.status === 401 || r.status === 403) {
      await r.body?.cancel();
      throw new Error(`file ${path} from ${this.label}: HTTP ${r.status}: the repository is gated or private (access tokens are not supported)`);
    }
    if (!r.ok || !r.body) throw new Error(`file ${path} from ${this.label}: HTTP ${r.status} ${r.statusText}`);
    return r;
  }
}

export interface CachedRepo {
  repoId: string;
  bytes: number;
}

/** Bytes of one repository's files in Cache Storage (all revisions). */
export async function cachedBytes(repoId: string): Promise<number> {
  return (await listCachedModels()).find((r) => r.repoId === repoId)?.bytes ?? 0;
}

/** Every repository with files in Cache Storage, with their sizes (EngineApi.cachedModels). */
export async function listCachedModels(): Promise<CachedRepo[]> {
  const cache = await openCache();
  if (!cache) return [];
  const sizes = new Map<string, number>();
  for (const req of await cache.keys()) {
    const m = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\//.exec(req.url);
    if (!m) continue;
    const r = await cache.match(req);
    const n = r ? (contentLength(r) ?? 0) : 0;
    await r?.body?.cancel();
    sizes.set(m[1], (sizes.get(m[1]) ?? 0) + n);
  }
  return [...sizes].map(([repoId, bytes]) => ({ repoId, bytes }));
}

/** Remove one repository's files from Cache Storage (EngineApi.deleteCachedModel). */
export async function deleteCachedModel(repoId: string): Promise<void> {
  const cache = await openCache();
  if (!cache) return;
  const prefix = hubPrefix(repoId);
  for (const req of await cache.keys()) {
    if (req.url.startsWith(prefix)) await cache.delete(req);
  }
}

export const deleteCached = deleteCachedModel;

// ---------------------------------------------------------------------------------------------
// user-picked folder

/**
 * Files the user picked (an <input webkitdirectory> listing or dropped files). A path matches
 * a file's path relative to the picked folder, or else its bare name when only one file has it.
 */
export class FolderSource implements ModelSource {
  readonly id: string;
  readonly label: string;
  private readonly byPath = new Map<string, File>();
  private readonly byName = new Map<string, File[]>();

  constructor(files: readonly File[], label?: string) {
    const root = files.find((f) => f.webkitRelativePath)?.webkitRelativePath.split('/')[0];
    this.label = label ?? (root ? `the folder "${root}"` : 'the picked files');
    this.id = `folder:${root ?? files.map((f) => f.name).sort().join(',')}`;
    for (const f of files) {
      const rel = f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name;
      this.byPath.set(rel, f);
      this.byName.set(f.name, [...(this.byName.get(f.name) ?? []), f]);
    }
  }

  private find(path: string): File | undefined {
    const exact = this.byPath.get(path);
    if (exact) return exact;
    const same = this.byName.get(path.split('/').pop()!);
    return same?.length === 1 ? same[0] : undefined;
  }

  async fetchFile(path: string, onProgress?: ProgressFn): Promise<SourceFile> {
    const f = this.find(path);
    if (!f) throw new MissingFileError(path, this.label);
    onProgress?.(f.size, f.size);
    return { path, size: f.size, body: f };
  }

  async has(path: string): Promise<boolean> {
    return this.find(path) !== undefined;
  }
}
