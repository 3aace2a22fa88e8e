// Engine store: owns the worker proxy and what the UI shows of the engine: the GPU report,
// the loaded model, load progress per file, the streaming answer, GPU memory and the cache of
// downloaded models. Every number it shows comes from the worker; the store does no math
// beyond bookkeeping.
import { getContext, setContext } from 'svelte';
import * as Comlink from 'comlink';
import type {
  CachedModel,
  GenerateRequest,
  GenerateResult,
  GpuReport,
  LoadProgress,
  ModelInfo,
  ModelSourceSpec,
  OpsPath,
  Quantization,
  TokenEvent,
} from '../api/engine_api';
import { startEngine, type EngineProxy } from '../api/engine_client';

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A short human name for a source, shown while it loads and in errors. */
export function describeSource(s: ModelSourceSpec): string {
  if (s.kind === 'builtin') return `built-in ${s.name} model`;
  if (s.kind === 'hub') return s.revision ? `${s.repoId}@${s.revision}` : s.repoId;
  const top = s.files[0]?.webkitRelativePath.split('/')[0];
  return `local folder ${top || '(unnamed)'} (${s.files.length} files)`;
}

/**
 * The spec as plain data for postMessage: a Svelte `$state` proxy anywhere in it (e.g. the
 * picked File list) fails structured cloning with "could not be cloned".
 */
function plainSource(s: ModelSourceSpec): ModelSourceSpec {
  if (s.kind === 'folder') return { kind: 'folder', files: Array.from(s.files) };
  return $state.snapshot(s) as ModelSourceSpec;
}

/** Same for a request: turns may come from a `$state` sample; images are Blobs, kept as they are. */
function plainRequest(r: GenerateRequest): GenerateRequest {
  return {
    turns: r.turns.map((t) => ({ role: t.role, text: t.text })),
    images: Array.from(r.images),
    maxNewTokens: r.maxNewTokens,
    sampling: { ...r.sampling },
  };
}

export class EngineStore {
  gpu = $state<GpuReport | null>(null);
  /** The worker itself failed (could not start, crashed). */
  error = $state<string | null>(null);
  readonly engine: EngineProxy;
  readonly terminate: () => void;

  // ---- model ----
  model = $state.raw<ModelInfo | null>(null);
  /** What is loading now (a description), or null. */
  loading = $state<string | null>(null);
  /** Latest progress per file, in the order files were first reported. */
  progress = $state.raw<LoadProgress[]>([]);
  modelError = $state<string | null>(null);
  gpuBytes = $state(0);
  cached = $state.raw<CachedModel[]>([]);
  cacheError = $state<string | null>(null);

  // ---- generation ----
  generating = $state(false);
  answer = $state('');
  tokensPerSecond = $state(0);
  tokenCount = $state(0);
  result = $state.raw<GenerateResult | null>(null);
  generateError = $state<string | null>(null);

  constructor() {
    const { engine, terminate } = startEngine();
    this.engine = engine;
    this.terminate = terminate;
  }

  async refreshGpu(): Promise<void> {
    try {
      this.gpu = await this.engine.gpuReport();
      this.error = null;
    } catch (e) {
      this.error = `The engine worker failed to start: ${message(e)}`;
    }
  }

  async load(source: ModelSourceSpec, quantization: Quantization, ops: OpsPath = 'custom'): Promise<boolean> {
    this.loading = describeSource(source);
    this.progress = [];
    this.modelError = null;
    const onProgress = Comlink.proxy((p: LoadProgress) => this.onProgress(p));
    try {
      this.model = await this.engine.loadModel(plainSource(source), quantization, onProgress, ops);
      return true;
    } catch (e) {
      // The worker unloaded whatever was there before it started loading.
      this.model = null;
      this.modelError = `Loading ${describeSource(source)} failed: ${message(e)}`;
      return false;
    } finally {
      this.loading = null;
      await this.refreshMemory();
      await this.refreshCache();
    }
  }

  private onProgress(p: LoadProgress): void {
    const at = this.progress.findIndex((x) => x.file === p.file);
    this.progress = at < 0 ? [...this.progress, p] : this.progress.map((x, i) => (i === at ? p : x));
  }

  async unload(): Promise<void> {
    try {
      await this.engine.unloadModel();
      this.model = null;
      this.modelError = null;
    } catch (e) {
      this.modelError = `Unloading failed: ${message(e)}`;
    }
    await this.refreshMemory();
  }

  async refreshMemory(): Promise<void> {
    try {
      this.gpuBytes = await this.engine.gpuMemoryBytes();
    } catch {
      // Memory is informational; the load/generate error already says what went wrong.
    }
  }

  async refreshCache(): Promise<void> {
    try {
      this.cached = await this.engine.cachedModels();
      this.cacheError = null;
    } catch (e) {
      this.cacheError = `Could not list cached models: ${message(e)}`;
    }
  }

  async deleteCached(repoId: string): Promise<void> {
    try {
      await this.engine.deleteCachedModel(repoId);
      this.cacheError = null;
    } catch (e) {
      this.cacheError = `Could not delete the cached ${repoId}: ${message(e)}`;
    }
    await this.refreshCache();
  }

  async generate(req: GenerateRequest): Promise<GenerateResult | null> {
    this.generating = true;
    this.answer = '';
    this.tokensPerSecond = 0;
    this.tokenCount = 0;
    this.result = null;
    this.generateError = null;
    const onToken = Comlink.proxy((t: TokenEvent) => {
      this.answer = t.text;
      this.tokensPerSecond = t.tokensPerSecond;
      this.tokenCount = t.index + 1;
    });
    try {
      const r = await this.engine.generate(plainRequest(req), onToken);
      this.result = r;
      this.answer = r.text;
      this.tokensPerSecond = r.tokensPerSecond;
      this.tokenCount = r.tokens;
      return r;
    } catch (e) {
      this.generateError = message(e);
      // A lost device unloads the model in the worker; ask it what remains.
      await this.syncModel();
      return null;
    } finally {
      this.generating = false;
      await this.refreshMemory();
    }
  }

  async cancel(): Promise<void> {
    await this.engine.cancel();
  }

  /** Shows what the worker holds: it drops the model when the GPU device is lost. */
  private async syncModel(): Promise<void> {
    try {
      this.model = await this.engine.modelInfo();
    } catch {
      this.model = null;
    }
  }
}

const KEY = Symbol('engine-store');
export function createEngineStore(): EngineStore {
  return setContext(KEY, new EngineStore());
}
export function useEngineStore(): EngineStore {
  return getContext<EngineStore>(KEY);
}
