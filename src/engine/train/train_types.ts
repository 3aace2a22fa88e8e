// Types shared by everything that trains: the run configuration the UI builds (playbook
// presets fill it), the adapter description that PEFT export writes, and the events a run
// reports. Pure types: no tfjs here, so the UI can import them.

/** Which parts of the model train in a run (playbook §4). */
export interface TrainableParts {
  /** LoRA on the text decoder's linear layers (default q,k,v,o,gate,up,down). */
  textLora: boolean;
  /** The connector's projection: trained fully, by LoRA, or frozen. */
  connector: 'frozen' | 'full' | 'lora';
  /** LoRA on the vision encoder's linear layers (q,k,v,out_proj,fc1,fc2). */
  visionLora: boolean;
}

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number; // 0..1
  rsLora: boolean; // scale alpha/sqrt(r) instead of alpha/r
  /** Module-name suffixes within the trained parts, PEFT style (q_proj, k_proj, ...). */
  targetModules: string[];
}

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface OptimSpec {
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  gradClip: number; // global-norm clip; 0 = off
  schedule: ScheduleKind;
  warmupSteps: number;
}

/** One stage of a run (playbook §6): its own data filter, epochs and learning rate. */
export interface StageSpec {
  name: string;
  /** Which train-split samples this stage uses; empty = all. */
  filter: { stages?: number[]; kinds?: string[]; tags?: string[] };
  epochs: number;
  lr: number;
}

export interface RunConfig {
  id: string;
  name: string;
  seed: number;
  parts: TrainableParts;
  lora: LoraSpec;
  optim: OptimSpec;
  stages: StageSpec[];
  batchSize: number; // samples per micro-batch (padded)
  gradAccumulation: number; // micro-batches per optimiser step
  /** business:general ratio to hold each epoch (10 = 10:1); 0 = use no general data. */
  businessToGeneral: number;
  maxTokens: number; // truncate longer samples (reported)
  evalEvery: number; // validation loss every N optimiser steps; 0 = off
  /**
   * Which split the periodic evaluation loss is measured on; 'val' when absent. 'train' is the
   * playbook's overfit check (§3): the model must first learn its own training set.
   */
  evalSplit?: 'val' | 'train';
  checkpointEvery: number; // checkpoint every N optimiser steps
  activationCheckpointing: boolean;
}

export interface StepEvent {
  kind: 'step';
  step: number; // optimiser steps done
  totalSteps: number;
  stage: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  etaSeconds: number;
  gpuBytes: number;
}

export interface EvalEvent {
  kind: 'eval';
  step: number;
  valLoss: number;
}

export interface NoticeEvent {
  kind: 'notice';
  level: 'info' | 'warning' | 'error';
  message: string;
}

export type TrainEvent = StepEvent | EvalEvent | NoticeEvent;

export type RunStatus = 'idle' | 'running' | 'paused' | 'stopped' | 'done' | 'failed';

/** A named host tensor, the unit of checkpoints and adapter files. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Everything needed to continue a run exactly: trainable tensors, optimiser moments, and
 * where the data order stands. Written to IndexedDB by the trainer loop.
 */
export interface TrainerState {
  step: number; // optimiser steps done
  params: NamedArray[]; // adapter (and full-trained) tensors, PEFT-style names
  moments: NamedArray[]; // AdamW m and v, named `<param>.m` / `<param>.v`
}

/** What one optimiser-side call on a micro-batch reports. */
export interface MicroStepResult {
  loss: number; // mean CE over the micro-batch's answer tokens
  tokens: number; // answer tokens that counted
  finite: boolean; // false when loss or any gradient was NaN/Inf (the step is then skipped)
}

export interface ApplyResult {
  gradNorm: number; // global norm before clipping
  skipped: boolean; // non-finite gradients: no update
}
