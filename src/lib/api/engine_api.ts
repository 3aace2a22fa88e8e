// The one typed API between the UI and the engine worker (workers/engine.worker.ts).
// The worker holds no UI state; the UI does no math. Every call crosses through comlink;
// callbacks are passed wrapped in Comlink.proxy().
import type { Turn } from '../dataset/schema';
import type { RunConfig, RunStatus, TrainEvent } from '../../engine/train/train_types';
import type { CheckpointMeta, EvalPoint, LossPoint } from '../../engine/train/checkpoint';

export type { RunConfig, RunStatus, TrainEvent, CheckpointMeta, EvalPoint, LossPoint };

/** What the browser's WebGPU adapter is, as the engine sees it. */
export interface GpuReport {
  available: boolean;
  /** Why WebGPU is unavailable and what to do about it; set when `available` is false. */
  reason?: string;
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  features: string[];
  limits: Record<string, number>;
  /** tfjs backend the engine runs on once initialised ('webgpu'), or null before. */
  backend: string | null;
}

export type Quantization = 'f32' | 'q8' | 'q4';
export type OpsPath = 'custom' | 'stock';

/** Where a model comes from. */
export type ModelSourceSpec =
  | { kind: 'builtin'; name: 'tiny' } // the demo/test model shipped under /models/tiny/
  | { kind: 'hub'; repoId: string; revision?: string } // downloaded once, cached for offline use
  | { kind: 'folder'; files: File[] }; // a local folder the user picked

export interface LoadProgress {
  file: string;
  loaded: number;
  total: number | null;
  phase: 'download' | 'weights' | 'done';
}

export interface ModelInfo {
  id: string;
  quantization: Quantization;
  ops: OpsPath;
  /** Parameter count of the base model. */
  params: number;
  gpuBytes: number;
  imageSeqLen: number;
  imageSize: number;
  vocabSize: number;
  summary: string; // e.g. "vision 12x768, text 30x576 (9 heads, 3 kv), vocab 49280"
}

export interface SamplingSpec {
  temperature: number; // 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
  seed: number;
}

export interface GenerateRequest {
  turns: Turn[]; // the conversation so far; `<image>` placeholders refer to `images` in order
  images: Blob[];
  maxNewTokens: number;
  sampling: SamplingSpec;
}

export interface TokenEvent {
  text: string; // decoded text so far
  tokenId: number;
  index: number;
  tokensPerSecond: number;
}

export interface GenerateResult {
  text: string;
  tokens: number;
  stopReason: 'stop_token' | 'max_tokens' | 'cancelled';
  prefillMs: number;
  tokensPerSecond: number;
}

export interface CachedModel {
  repoId: string;
  bytes: number;
}

export interface EngineApi {
  /** Probe the WebGPU adapter from inside the worker. Never throws: a missing GPU is a report. */
  gpuReport(): Promise<GpuReport>;
  /**
   * Load (replacing any loaded model). Errors name the file/weight/field and why.
   * `ops` picks our WGSL kernels ('custom', the default) or stock tfjs ops, for comparison.
   */
  loadModel(source: ModelSourceSpec, quantization: Quantization, onProgress?: (p: LoadProgress) => void, ops?: OpsPath): Promise<ModelInfo>;
  unloadModel(): Promise<void>;
  /** The loaded model, or null (never loaded, unloaded, or dropped after a lost GPU device). */
  modelInfo(): Promise<ModelInfo | null>;
  /** Stream an answer; resolves when done. Only one generation runs at a time. */
  generate(req: GenerateRequest, onToken?: (t: TokenEvent) => void): Promise<GenerateResult>;
  /** Cancel the running generation (it resolves with stopReason 'cancelled'). */
  cancel(): Promise<void>;
  gpuMemoryBytes(): Promise<number>;
  cachedModels(): Promise<CachedModel[]>;
  deleteCachedModel(repoId: string): Promise<void>;

  // ---- training (LoRA SFT on the loaded model; samples come from the dataset's IndexedDB) ----
  /**
   * Train the loaded model; resolves with the final status once the run ends (done, stopped,
   * or failed with `error` set; an 'error' notice says the same). Rejects only when the run
   * cannot start: no model, no labelled train-split samples, an invalid config, another run
   * active (running or paused), a generation running. Events stream through `onEvent`.
   */
  startTraining(run: RunConfig, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus>;
  /** Pause after the current optimiser step (the run keeps its GPU state). */
  pauseTraining(): Promise<void>;
  resumeTraining(): Promise<void>;
  /** Stop after the current step; the run writes a final checkpoint and startTraining resolves. */
  stopTraining(): Promise<void>;
  trainingStatus(): Promise<TrainingStatus>;
  /** Loss history of the current (or last) run, including what a resumed run inherited. */
  trainingHistory(): Promise<TrainingHistory>;
  /** Checkpoints stored in this browser (newest run first), for "Resume" after a reload. */
  listCheckpoints(): Promise<CheckpointMeta[]>;
  deleteCheckpoints(runId: string): Promise<void>;
  /** Continue a run from its latest checkpoint, with the same semantics as startTraining. */
  resumeFromCheckpoint(runId: string, onEvent?: (e: TrainEvent) => void, data?: TrainingDataSource): Promise<TrainingStatus>;
  /** The current adapter as PEFT files (adapter_config.json, adapter_model.safetensors). */
  exportAdapter(): Promise<AdapterExport>;
  /** Load a PEFT adapter onto the loaded model (replacing any adapter); errors name the file and field. */
  importAdapter(files: AdapterFile[]): Promise<AdapterInfo>;
  /** Switch the adapter on (tuned model) or off (the frozen base), e.g. to compare answers. */
  setAdapterEnabled(on: boolean): Promise<AdapterInfo | null>;
}

/** Where the worker reads training samples and images from (the dataset workspace's database). */
export interface TrainingDataSource {
  /** IndexedDB database name; the app's default when omitted (tests pass a fresh one). */
  dbName?: string;
}

export interface AdapterFile {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

export interface AdapterExport {
  files: AdapterFile[];
}

/** The adapter attached to the loaded model. */
export interface AdapterInfo {
  source: 'training' | 'import';
  enabled: boolean;
  /** Trainable values (floats). */
  params: number;
  /** HF module names with LoRA, and those trained fully (the connector). */
  loraModules: number;
  fullModules: string[];
}

export interface TrainingHistory {
  steps: LossPoint[];
  evals: EvalPoint[];
}

export interface TrainingStatus {
  status: RunStatus;
  runId: string | null;
  runName: string | null;
  /** Optimiser steps done / planned. */
  step: number;
  totalSteps: number;
  /** Why the run failed (status 'failed'). */
  error: string | null;
  adapter: AdapterInfo | null;
}
