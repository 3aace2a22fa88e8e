// Training inside the engine worker: the part of EngineService that starts, steers and reports
// LoRA SFT runs, and holds the adapter they leave behind. Kept out of engine_service.ts so the
// service stays a thin list of API methods; all the training itself lives in src/engine/train
// (TrainingRun drives stages/epochs/steps, TrainerCore the optimiser side, CheckpointStore the
// IndexedDB checkpoints, peft.ts the adapter files).
//
// Rules it keeps:
// - One run at a time. A second start while one is running or paused is an error naming the
//   active run; the UI disables its button, the error is for scripts and races.
// - Samples and images come from the dataset's IndexedDB, read here in the worker with its own
//   connection (openDatasetDb), so no sample or pixel crosses the UI <-> worker boundary.
// - The adapter a run trains stays attached to the model when the run ends (done, stopped,
//   failed on NaN), so the Playground answers with it and Export writes it. It is freed when
//   another run starts, an adapter is imported, or the model is unloaded or replaced.
// - A lost GPU device ends the run through TrainingRun's deviceLost promise; the adapter's
//   buffers are gone with it, so it is forgotten rather than disposed.
import type {
  AdapterExport,
  AdapterFile,
  AdapterInfo,
  ModelInfo,
  TrainingDataSource,
  TrainingHistory,
  TrainingStatus,
} from '../lib/api/engine_api';
import { openDatasetDb } from '../lib/dataset/db';
import { isLabelled } from '../lib/dataset/schema';
import type { Idefics3Model } from './model/vlm';
import type { Processor } from './processor/processor';
import { CheckpointStore, type CheckpointMeta, type Checkpoint } from './train/checkpoint';
import { MemoryInputsCache, TrainingData } from './train/data';
import { AdapterSet } from './train/lora';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, exportPeftAdapter, importPeftAdapter } from './train/peft';
import { TrainingRun, type RunResult } from './train/run_loop';
import { TrainerCore } from './train/trainer_core';
import type { RunConfig, TrainEvent } from './train/train_types';

/** The loaded model as training needs it. */
export interface TrainingModel {
  info: ModelInfo;
  model: Idefics3Model;
  processor: Processor;
}

/** What the training side asks of the service that owns the model and the device. */
export interface TrainingHost {
  /** The loaded model; throws naming why there is none (never loaded, device lost). */
  model(): TrainingModel;
  /** Resolves with the GPUDeviceLostInfo once the device is lost; null before the backend starts. */
  deviceLost(): Promise<unknown> | null;
  /** Why the GPU is busy with something else (a generation, a load), or null. */
  busyWith(): string | null;
}

export interface TrainingControlOptions {
  /** IndexedDB database of the checkpoints (tests use a fresh one). */
  checkpointDb?: string;
  /** Default dataset database when a call names none. */
  datasetDb?: string;
}

interface Attached {
  set: AdapterSet;
  /** The run's core (adapters + optimiser state); null for an imported adapter. */
  core: TrainerCore | null;
  source: AdapterInfo['source'];
}

const EMPTY_HISTORY: TrainingHistory = { steps: [], evals: [] };

export class TrainingControl {
  /** The current run, or the last one (kept for its status, history and adapter). */
  private run: TrainingRun | null = null;
  private result: RunResult | null = null;
  /** Set while a start is between its checks and its TrainingRun (reading the dataset, a checkpoint). */
  private starting: string | null = null;
  private adapter: Attached | null = null;
  private store: Promise<CheckpointStore> | null = null;
  /** Prepared inputs survive between runs of the same model (the second run skips decoding). */
  private cache: { scope: string; cache: MemoryInputsCache } | null = null;

  constructor(
    private readonly host: TrainingHost,
    private readonly opts: TrainingControlOptions = {},
  ) {}

  /** A run is running or paused (or starting): the model must stay as it is. */
  get active(): boolean {
    const s = this.run?.status;
    return this.starting !== null || s === 'running' || s === 'paused';
  }

  /** A run is computing on the GPU right now. */
  get computing(): boolean {
    return this.starting !== null || this.run?.status === 'running';
  }

  /** Why nothing else may change the model now, or null. */
  activeReason(): string | null {
    if (this.starting) return `Training run "${this.starting}" is starting`;
    if (!this.active) return null;
    return `Training run "${this.run!.config.name}" is ${this.run!.status}`;
  }

  start(config: RunConfig, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus> {
    return this.launch(config.name, async () => ({ config, resumeFrom: undefined }), onEvent, data);
  }

  resumeFrom(runId: string, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus> {
    return this.launch(`from checkpoint ${runId}`, async () => {
      const cp = await (await this.checkpoints()).load(runId);
      if (!cp) throw new Error(`No checkpoint of run ${runId} is stored in this browser (deleted, or saved in another browser profile).`);
      return { config: cp.config, resumeFrom: cp };
    }, onEvent, data);
  }

  private async launch(
    label: string,
    what: () => Promise<{ config: RunConfig; resumeFrom: Checkpoint | undefined }>,
    onEvent: ((e: TrainEvent) => void) | undefined,
    data: TrainingDataSource | undefined,
  ): Promise<TrainingStatus> {
    const active = this.activeReason();
    if (active) throw new Error(`${active}: only one run at a time. Stop it (or wait for it to finish) before starting another.`);
    const busy = this.host.busyWith();
    if (busy) throw new Error(`${busy}: wait for it before training.`);
    const m = this.host.model();
    this.starting = label;
    let run: TrainingRun;
    try {
      const { config, resumeFrom } = await what();
      const db = openDatasetDb(data?.dbName ?? this.opts.datasetDb);
      // Unlabelled samples have nothing to learn; leaving them out keeps "no answer tokens" warnings for real problems.
      const samples = (await db.listSamples()).filter(isLabelled);
      if (!samples.some((s) => s.split === 'train')) {
        throw new Error(
          'The dataset has no labelled train-split samples: label some samples (an assistant answer) and put them in the train split in the Dataset tab.',
        );
      }
      const store = await this.checkpoints();
      const trainingData = new TrainingData(m.processor, {
        getImage: (hash) => db.getImage(hash),
        maxTokens: config.maxTokens,
        cacheScope: m.info.id,
        cache: this.inputsCache(m.info.id),
        onNotice: onEvent,
      });
      run = new TrainingRun({
        config,
        samples,
        data: trainingData,
        createCore: (c) => {
          const core = new TrainerCore(m.model, c);
          this.adapter = { set: core.adapters, core, source: 'training' };
          return core;
        },
        resumeFrom,
        checkpoints: store,
        deviceLost: this.host.deviceLost() ?? undefined,
        onEvent,
      });
      // The new run's adapter replaces the old one (freed only now that the run could be built).
      this.dropAdapter(m.model);
      this.run?.dispose();
      this.run = run;
      this.result = null;
    } finally {
      this.starting = null;
    }
    this.result = await run.run();
    return this.status();
  }

  pause(): void {
    if (this.run?.status !== 'running') throw new Error(`No training run is running${this.run ? ` (the last one is ${this.run.status})` : ''}: nothing to pause.`);
    this.run.pause();
  }

  resume(): void {
    if (this.run?.status !== 'paused' && this.run?.status !== 'running') {
      throw new Error(`No training run is paused${this.run ? ` (the last one is ${this.run.status})` : ''}: nothing to resume. To continue a finished or stopped run, resume it from its checkpoint.`);
    }
    // Switched off while paused (to compare with the base model): a run trains it switched on.
    if (this.adapter) this.adapter.set.enabled = true;
    this.run.resume();
  }

  stop(): void {
    if (!this.run || !this.active) throw new Error('No training run is active: nothing to stop.');
    this.run.stop();
  }

  status(): TrainingStatus {
    const r = this.run;
    const failed = this.result?.status === 'failed';
    return {
      status: this.starting ? 'running' : (r?.status ?? 'idle'),
      runId: r?.config.id ?? null,
      runName: r?.config.name ?? null,
      step: r?.stepsDone ?? 0,
      totalSteps: r?.totalSteps ?? 0,
      error: failed ? (this.result?.message ?? 'The run failed.') : null,
      adapter: this.adapterInfo(),
    };
  }

  /** The current (or last) run's loss history: what a resumed run inherited plus what it added. */
  history(): TrainingHistory {
    const h = this.run?.history;
    return h ? { steps: [...h.steps], evals: [...h.evals] } : EMPTY_HISTORY;
  }

  async listCheckpoints(): Promise<CheckpointMeta[]> {
    const all = await (await this.checkpoints()).list();
    return all.sort((a, b) => b.createdAt - a.createdAt);
  }

  async deleteCheckpoints(runId: string): Promise<void> {
    if (this.active && this.run?.config.id === runId) throw new Error(`Run "${this.run.config.name}" is ${this.run.status}: stop it before deleting its checkpoints.`);
    await (await this.checkpoints()).delete(runId);
  }

  async exportAdapter(): Promise<AdapterExport> {
    if (this.computing) throw new Error(`${this.activeReason()}: pause or stop it before exporting, so the adapter is read between steps.`);
    const a = this.adapter;
    if (!a) throw new Error('No adapter to export: train one (or import one) on the loaded model first.');
    const m = this.host.model();
    const peft = exportPeftAdapter(await a.set.toNamedArrays(), { baseModel: m.info.id, lora: a.set.spec });
    return {
      files: [
        { name: ADAPTER_CONFIG_FILE, bytes: new TextEncoder().encode(peft.configJson) as Uint8Array<ArrayBuffer> },
        { name: ADAPTER_WEIGHTS_FILE, bytes: peft.weights },
      ],
    };
  }

  async importAdapter(files: AdapterFile[]): Promise<AdapterInfo> {
    const active = this.activeReason();
    if (active) throw new Error(`${active}: stop it before importing an adapter.`);
    const m = this.host.model();
    const cfg = files.find((f) => baseName(f.name) === ADAPTER_CONFIG_FILE) ?? files.find((f) => f.name.endsWith('.json'));
    const weights = files.find((f) => baseName(f.name) === ADAPTER_WEIGHTS_FILE) ?? files.find((f) => f.name.endsWith('.safetensors'));
    const names = files.map((f) => f.name).join(', ') || 'none';
    if (!cfg) throw new Error(`Adapter import: ${ADAPTER_CONFIG_FILE} is missing (files given: ${names})`);
    if (!weights) throw new Error(`Adapter import: ${ADAPTER_WEIGHTS_FILE} is missing (files given: ${names})`);
    const imported = await importPeftAdapter(new TextDecoder().decode(cfg.bytes), weights.bytes, m.model.config, {
      config: cfg.name,
      weights: weights.name,
    });
    const set = new AdapterSet(m.model.weights, imported.parts, imported.lora, 0);
    try {
      set.loadNamedArrays(imported.arrays);
    } catch (e) {
      set.dispose();
      throw e;
    }
    this.dropAdapter(m.model);
    this.run?.dispose();
    set.training = false;
    m.model.adapters = set;
    this.adapter = { set, core: null, source: 'import' };
    return this.adapterInfo()!;
  }

  setAdapterEnabled(on: boolean): AdapterInfo | null {
    if (this.computing) throw new Error(`${this.activeReason()}: it switches the adapter on for every step; pause or stop it first.`);
    if (this.adapter) this.adapter.set.enabled = on;
    return this.adapterInfo();
  }

  /** Before a generation: refuse while a run computes; otherwise answer without dropout. */
  beforeGenerate(): void {
    if (this.computing) throw new Error(`${this.activeReason()}: pause or stop it before generating (both need the GPU).`);
    if (this.adapter) this.adapter.set.training = false;
  }

  /** The model is about to be unloaded or replaced: its adapter goes with it. */
  onModelDropped(model: Idefics3Model | null): void {
    this.dropAdapter(model);
    this.run?.dispose();
    this.cache = null;
  }

  /** Every GPU buffer is gone: forget the adapter without touching it (the run reports the loss itself). */
  onDeviceLost(): void {
    this.adapter = null;
    this.cache = null;
  }

  adapterInfo(): AdapterInfo | null {
    const a = this.adapter;
    if (!a) return null;
    const modules = a.set.trainedModuleNames();
    return { source: a.source, enabled: a.set.enabled, params: a.set.parameterCount(), loraModules: modules.lora.length, fullModules: modules.full };
  }

  private dropAdapter(model: Idefics3Model | null): void {
    const a = this.adapter;
    this.adapter = null;
    if (!a) return;
    // A run's core owns its adapters (and detaches them); the run frees the core on dispose.
    if (a.core) return;
    if (model && model.adapters === a.set) model.adapters = null;
    a.set.dispose();
  }

  private inputsCache(scope: string): MemoryInputsCache {
    if (this.cache?.scope !== scope) this.cache = { scope, cache: new MemoryInputsCache() };
    return this.cache.cache;
  }

  private checkpoints(): Promise<CheckpointStore> {
    this.store ??= CheckpointStore.open(this.opts.checkpointDb).catch((e: unknown) => {
      this.store = null; // let a later call try again
      throw e;
    });
    return this.store;
  }
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
