// The engine behind the worker's API: holds the loaded model, its processor and the one
// running generation. DOM-free (runs in a module worker or a test page alike); the worker
// file only exposes an instance through comlink, so tests can drive this class directly.
//
// Rules it keeps:
// - One model at a time. Loading disposes the previous model's GPU memory FIRST, so a 500M
//   model can replace a 256M one on a GPU that could not hold both.
// - One generation at a time: a second call while one runs is an error (the UI disables its
//   button; the error is for scripts and races). cancel() aborts through an AbortSignal that
//   generate() checks between decode steps.
// - A lost GPU device invalidates every buffer: the model is dropped, the running generation
//   ends with an error, and every later call says the device was lost and what to do.
// - Training (TrainingControl) shares the model and the GPU: while a run is active the model
//   cannot be loaded or unloaded, and while it computes nothing generates.
import type {
  AdapterExport,
  AdapterFile,
  AdapterInfo,
  CachedModel,
  CheckpointMeta,
  EngineApi,
  GenerateRequest,
  GenerateResult,
  GpuReport,
  LoadProgress,
  ModelInfo,
  ModelSourceSpec,
  OpsPath,
  Quantization,
  RunConfig,
  TokenEvent,
  TrainEvent,
  TrainingDataSource,
  TrainingHistory,
  TrainingStatus,
} from '../lib/api/engine_api';
import { probeGpu } from '../lib/gpu/gpu_report';
import { gpuMemoryBytes, initEngineBackend } from './backend';
import { imageSeqLen, type VlmConfig } from './config';
import { generate } from './generate/generate';
import { loadModel, openSource, type ModelFiles } from './load/load_model';
import { deleteCachedModel, listCachedModels } from './load/sources';
import { createCustomOps } from './ops/custom_ops';
import type { Ops } from './ops/ops';
import { createStockOps } from './ops/stock_ops';
import { Idefics3Model } from './model/vlm';
import { buildModelInputs } from './processor/build_inputs';
import { decodeImage } from './processor/image_decode';
import { createProcessor, type Processor, type ProcessorFiles } from './processor/processor';
import { TrainingControl, type TrainingControlOptions } from './training_control';

/** Progress events per file are forwarded at most this often (comlink posts a message each). */
const PROGRESS_INTERVAL_MS = 100;
/** How long a failed GPU call waits for the device's `lost` promise before reporting itself. */
const LOST_GRACE_MS = 200;

interface Loaded {
  info: ModelInfo;
  model: Idefics3Model;
  processor: Processor;
  stopIds: number[];
}

export class EngineService implements EngineApi {
  private backendReady: Promise<void> | null = null;
  private backendName: string | null = null;
  private current: Loaded | null = null;
  private loading = false;
  private running: AbortController | null = null;
  /** Set once the GPU device is lost; every later GPU call fails with it. */
  private lost: string | null = null;
  /** Resolves when the device is lost (never, normally). */
  private deviceLost: Promise<void> | null = null;
  /** The device's own `lost` promise (resolves with GPUDeviceLostInfo), for training runs. */
  private deviceLostInfo: Promise<unknown> | null = null;
  private readonly training: TrainingControl;

  /**
   * @param opsPath which Ops implementation models run on unless loadModel says otherwise.
   * @param trainingOpts where checkpoints (and by default training samples) are stored.
   */
  constructor(
    private readonly opsPath: OpsPath = 'custom',
    trainingOpts: TrainingControlOptions = {},
  ) {
    this.training = new TrainingControl(
      {
        model: () => {
          this.assertDevice();
          if (!this.current) throw new Error('No model is loaded: load one in the Model tab first.');
          return this.current;
        },
        deviceLost: () => this.deviceLostInfo,
        busyWith: () => (this.running ? 'A generation is running' : this.loading ? 'A model is loading' : null),
      },
      trainingOpts,
    );
  }

  async gpuReport(): Promise<GpuReport> {
    const report = await probeGpu(globalThis.navigator?.gpu);
    return { ...report, backend: this.backendName };
  }

  async loadModel(
    source: ModelSourceSpec,
    quantization: Quantization,
    onProgress?: (p: LoadProgress) => void,
    ops: OpsPath = this.opsPath,
  ): Promise<ModelInfo> {
    if (ops !== 'custom' && ops !== 'stock') throw new Error(`loadModel: ops must be 'custom' or 'stock', got ${JSON.stringify(ops)}`);
    if (this.running) throw new Error('A generation is running: cancel it (or wait for it to finish) before loading another model.');
    if (this.loading) throw new Error('A model is already loading: wait for it to finish before loading another.');
    const training = this.training.activeReason();
    if (training) throw new Error(`${training}: stop it before loading another model.`);
    this.loading = true;
    try {
      await this.ensureBackend();
      // Free the old model first: two models may not fit on the GPU together.
      this.dropModel();
      const progress = new ProgressRelay(onProgress);
      const loaded = await loadModel(openSource(source), { quantization, onProgress: (p) => progress.report(p) });
      let model: Idefics3Model;
      let processor: Processor;
      try {
        processor = await createProcessor(processorFiles(loaded.files), loaded.config);
        model = new Idefics3Model(loaded.weights, createOps(ops));
        this.assertDevice();
      } catch (e) {
        loaded.weights.dispose();
        throw e;
      }
      const info = modelInfo(sourceId(source), quantization, ops, loaded.config, loaded.weights.gpuBytes(), loaded.paramCount);
      this.current = { info, model, processor, stopIds: stopIds(processor) };
      progress.finish();
      return info;
    } catch (e) {
      throw await this.explain(e);
    } finally {
      this.loading = false;
    }
  }

  async unloadModel(): Promise<void> {
    if (this.running) throw new Error('A generation is running: cancel it before unloading the model.');
    const training = this.training.activeReason();
    if (training) throw new Error(`${training}: stop it before unloading the model.`);
    this.dropModel();
  }

  async modelInfo(): Promise<ModelInfo | null> {
    return this.current?.info ?? null;
  }

  async generate(req: GenerateRequest, onToken?: (t: TokenEvent) => void): Promise<GenerateResult> {
    if (this.running) throw new Error('A generation is already running: only one runs at a time. Cancel it or wait for it to finish.');
    if (this.loading) throw new Error('A model is loading: wait for it before generating.');
    this.assertDevice();
    const m = this.current;
    if (!m) throw new Error('No model is loaded: load one in the Model tab first.');
    validateRequest(req);
    this.training.beforeGenerate();
    const ctrl = new AbortController();
    this.running = ctrl;
    try {
      const images = await Promise.all(req.images.map((b, i) => decodeImage(b, `image ${i + 1} of ${req.images.length}`)));
      const inputs = buildModelInputs(m.processor, req.turns, images, { mode: 'generate' });
      const tokens: number[] = [];
      let text = '';
      let result: GenerateResult = { text: '', tokens: 0, stopReason: 'max_tokens', prefillMs: 0, tokensPerSecond: 0 };
      const stream = generate(m.model, inputs, {
        maxNewTokens: req.maxNewTokens,
        sampling: req.sampling,
        stopIds: m.stopIds,
        signal: ctrl.signal,
      });
      for await (const ev of stream) {
        this.assertDevice();
        // The stop token ends the answer; it is not part of its text.
        if (ev.token !== null && ev.reason !== 'stop_token') {
          tokens.push(ev.token);
          // Decode the whole answer each step: a token may complete a multi-byte character
          // begun by the previous one, which decoding tokens one by one would garble.
          text = m.processor.decode(tokens, { skipSpecialTokens: true });
          onToken?.({ text, tokenId: ev.token, index: ev.index, tokensPerSecond: ev.tokensPerSecond });
        }
        if (ev.done) {
          result = { text, tokens: tokens.length, stopReason: ev.reason ?? 'max_tokens', prefillMs: ev.prefillMs, tokensPerSecond: ev.tokensPerSecond };
        }
      }
      return result;
    } catch (e) {
      throw await this.explain(e);
    } finally {
      this.running = null;
    }
  }

  async cancel(): Promise<void> {
    this.running?.abort();
  }

  async gpuMemoryBytes(): Promise<number> {
    // Before the backend starts nothing is on the GPU; measuring must not start it.
    return this.backendName ? gpuMemoryBytes() : 0;
  }

  async cachedModels(): Promise<CachedModel[]> {
    return listCachedModels();
  }

  /** Frees the browser's copy only: a loaded model keeps running from its GPU weights. */
  async deleteCachedModel(repoId: string): Promise<void> {
    await deleteCachedModel(repoId);
  }

  // ---- training: TrainingControl does the work; these only cross the API ----

  async startTraining(run: RunConfig, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus> {
    if (this.loading) throw new Error('A model is loading: wait for it before training.');
    return this.training.start(run, onEvent, data);
  }

  async pauseTraining(): Promise<void> {
    this.training.pause();
  }

  async resumeTraining(): Promise<void> {
    this.training.resume();
  }

  async stopTraining(): Promise<void> {
    this.training.stop();
  }

  async trainingStatus(): Promise<TrainingStatus> {
    return this.training.status();
  }

  async trainingHistory(): Promise<TrainingHistory> {
    return this.training.history();
  }

  async listCheckpoints(): Promise<CheckpointMeta[]> {
    return this.training.listCheckpoints();
  }

  async deleteCheckpoints(runId: string): Promise<void> {
    return this.training.deleteCheckpoints(runId);
  }

  async resumeFromCheckpoint(runId: string, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus> {
    if (this.loading) throw new Error('A model is loading: wait for it before training.');
    return this.training.resumeFrom(runId, onEvent, data);
  }

  async exportAdapter(): Promise<AdapterExport> {
    return this.training.exportAdapter();
  }

  async importAdapter(files: AdapterFile[]): Promise<AdapterInfo> {
    if (this.running) throw new Error('A generation is running: cancel it before importing an adapter.');
    return this.training.importAdapter(files);
  }

  async setAdapterEnabled(on: boolean): Promise<AdapterInfo | null> {
    if (this.running) throw new Error('A generation is running: wait for it before switching the adapter.');
    return this.training.setAdapterEnabled(on);
  }

  private async ensureBackend(): Promise<void> {
    this.assertDevice();
    this.backendReady ??= (async () => {
      const backend = await initEngineBackend();
      this.backendName = 'webgpu';
      this.deviceLostInfo = backend.device.lost;
      this.deviceLost = backend.device.lost.then((info) => this.onDeviceLost(info));
    })().catch((e: unknown) => {
      // Let a later call try again (e.g. after the user enables WebGPU and reloads the worker).
      this.backendReady = null;
      throw e;
    });
    await this.backendReady;
  }

  private onDeviceLost(info: GPUDeviceLostInfo): void {
    const why = info.message ? `${info.reason}: ${info.message}` : info.reason;
    this.lost =
      `The GPU device was lost (${why}); every model buffer on it is gone and the model was unloaded. ` +
      'Reload the page to start the engine on a fresh device, then load the model again.';
    this.running?.abort();
    this.training.onDeviceLost();
    this.current = null; // its buffers died with the device; nothing to dispose
  }

  /**
   * A kernel or read-back that failed because the device went away is reported as the loss,
   * not as itself. The failed call can settle before the device's `lost` promise does, so it
   * waits a moment for it.
   */
  private async explain(e: unknown): Promise<unknown> {
    if (this.deviceLost && !this.lost) await Promise.race([this.deviceLost, new Promise((r) => setTimeout(r, LOST_GRACE_MS))]);
    return this.lost ? new Error(this.lost) : e;
  }

  private assertDevice(): void {
    if (this.lost) throw new Error(this.lost);
  }

  private dropModel(): void {
    const m = this.current;
    this.current = null;
    this.training.onModelDropped(m?.model ?? null);
    if (m) m.model.weights.dispose();
  }
}

/**
 * Forwards load progress to the UI: at most one event per file every PROGRESS_INTERVAL_MS
 * (each one is a message across comlink), always phase changes and the end of a file, and a
 * final 'done' for every file once the model is ready.
 */
class ProgressRelay {
  /** Latest event per file, in first-seen order. */
  private readonly latest = new Map<string, LoadProgress>();
  /** When and in which phase each file's last forwarded event was. */
  private readonly sent = new Map<string, { at: number; phase: LoadProgress['phase'] }>();

  constructor(private readonly cb?: (p: LoadProgress) => void) {}

  report(p: LoadProgress): void {
    if (!this.cb) return;
    this.latest.set(p.file, p);
    const now = performance.now();
    const prev = this.sent.get(p.file);
    const finished = p.total !== null && p.loaded >= p.total;
    if (prev && prev.phase === p.phase && !finished && now - prev.at < PROGRESS_INTERVAL_MS) return;
    this.sent.set(p.file, { at: now, phase: p.phase });
    this.cb(p);
  }

  finish(): void {
    if (!this.cb) return;
    for (const p of this.latest.values()) this.cb({ ...p, loaded: p.total ?? p.loaded, phase: 'done' });
  }
}

function createOps(path: OpsPath): Ops {
  return path === 'custom' ? createCustomOps() : createStockOps();
}

/** The loader reads absent optional files as null; the processor wants them undefined. */
function processorFiles(f: ModelFiles): ProcessorFiles {
  return {
    tokenizerJson: f.tokenizerJson,
    tokenizerConfig: f.tokenizerConfig,
    preprocessorConfig: f.preprocessorConfig,
    processorConfig: f.processorConfig ?? undefined,
    chatTemplate: f.chatTemplate,
  };
}

/** The answer ends at <end_of_utterance> (SmolVLM's turn end) or the tokenizer's eos. */
function stopIds(p: Processor): number[] {
  const ids = [p.special.endOfUtterance];
  if (p.special.eos !== null && p.special.eos !== p.special.endOfUtterance) ids.push(p.special.eos);
  return ids;
}

function validateRequest(req: GenerateRequest): void {
  if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) {
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${req.maxNewTokens}`);
  }
  const s = req.sampling;
  if (!(s.temperature >= 0)) throw new Error(`generate: sampling.temperature must be >= 0, got ${s.temperature}`);
  if (!(s.topK >= 0)) throw new Error(`generate: sampling.topK must be >= 0 (0 = off), got ${s.topK}`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new Error(`generate: sampling.topP must be in (0, 1] (1 = off), got ${s.topP}`);
}

/** Parameters of the model's architecture, counted from the config (the weights may be quantized). */
function describe(c: VlmConfig): string {
  return (
    `vision ${c.vit_n_layers}x${c.vit_hidden_dim}, text ${c.lm_n_layers}x${c.lm_hidden_dim} ` +
    `(${c.lm_n_heads} heads, ${c.lm_n_kv_heads} kv), vocab ${c.lm_vocab_size}`
  );
}

function modelInfo(id: string, quantization: Quantization, ops: OpsPath, config: VlmConfig, gpuBytes: number, params: number): ModelInfo {
  return {
    id,
    quantization,
    ops,
    params,
    gpuBytes,
    imageSeqLen: imageSeqLen(config),
    imageSize: config.vit_img_size,
    vocabSize: config.lm_vocab_size,
    summary: describe(config),
  };
}

function sourceId(s: ModelSourceSpec): string {
  if (s.kind === 'builtin') return s.name;
  if (s.kind === 'hub') return s.repoId;
  return s.files[0]?.webkitRelativePath.split('/')[0] || 'local folder';
}
