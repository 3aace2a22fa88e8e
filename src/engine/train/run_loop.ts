// The run loop: stages in order -> epochs -> micro-batches -> an optimiser step every
// gradAccumulation micro-batches, with the learning rate from the stage's schedule, validation
// loss every evalEvery steps, checkpoints every checkpointEvery steps and at the end, and the
// controls a long browser run needs: pause/resume and stop between steps, a guard against
// non-finite steps, and a clean stop when the GPU device is lost.
//
// Deterministic: the data order is a pure function of (samples, run seed, stage, epoch)
// (mixing.ts), the position in it is part of every checkpoint, and the trainer core seeds its
// dropout per optimiser step; so a run rebuilt from a checkpoint (fresh model, fresh core,
// after a page reload) trains the same micro-batches with the same state and reproduces the
// uninterrupted loss curve.
//
// Steps are counted by the loop (`step`), skipped non-finite steps included, so the schedule
// and the data position advance together; the core's own count (TrainerState.step) counts
// only the updates it made.
// Each stage restarts the schedule (warmup, then decay over the stage's own steps) with the
// stage's lr as its peak: a second, high-quality stage gets its own, usually lower, peak.
import type { ModelInputs } from '../inputs';
import { gpuMemoryBytes } from '../backend';
import type { Sample } from '../../lib/dataset/schema';
import type { Checkpoint, DataPosition, EvalPoint, LossPoint } from './checkpoint';
import { epochOrder, planStages, type StagePlan } from './mixing';
import { learningRate } from './schedule';
import type {
  ApplyResult,
  MicroStepResult,
  NoticeEvent,
  RunConfig,
  RunStatus,
  TrainerState,
  TrainEvent,
} from './train_types';

/** What the loop asks of the optimiser side (TrainerCore implements it; tests may fake it). */
export interface TrainerCoreLike {
  microStep(batch: ModelInputs[]): Promise<MicroStepResult>;
  apply(lr: number): Promise<ApplyResult>;
  evalLoss(batch: ModelInputs[]): Promise<{ loss: number; tokens: number }>;
  state(): Promise<TrainerState>;
  load(state: TrainerState): void;
  dispose(): void;
}

/** Samples -> inputs (TrainingData implements it): null = skip (it reports why). */
export interface InputsProvider {
  prepare(s: Sample): Promise<ModelInputs | null>;
}

/** Where checkpoints go (CheckpointStore implements it). */
export interface CheckpointSink {
  save(cp: Checkpoint, opts?: { keepLast?: number }): Promise<void>;
}

export interface TrainingRunOptions {
  config: RunConfig;
  /** The dataset's samples (metadata); splits and stage filters are applied here. */
  samples: readonly Sample[];
  data: InputsProvider;
  /** Builds the core for this run (e.g. `(c) => new TrainerCore(model, c)`). */
  createCore: (config: RunConfig) => TrainerCoreLike;
  /** Continue from this checkpoint (its config is used; `config` must be the same run). */
  resumeFrom?: Checkpoint;
  checkpoints?: CheckpointSink;
  /** Checkpoints of the run to keep; default 2. */
  keepCheckpoints?: number;
  /** Resolves (with a reason) when the GPU device is lost, e.g. GPUDevice.lost. */
  deviceLost?: Promise<unknown>;
  onEvent?: (e: TrainEvent) => void;
  /** Consecutive non-finite steps that stop the run; default 3. */
  maxBadSteps?: number;
  /** Validation samples used per evaluation (first by id); default 64. */
  maxValSamples?: number;
  gpuBytes?: () => number;
  now?: () => number;
}

export interface RunResult {
  status: RunStatus;
  step: number;
  totalSteps: number;
  /** Why it ended, when not simply done. */
  message?: string;
  /** Step of the newest checkpoint written (this session or before), null if none. */
  lastCheckpoint: number | null;
}

/** The GPU device was lost: every buffer is gone, nothing more can run. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

/** Errors tfjs / WebGPU raise once the device is gone. */
export function isDeviceLostError(e: unknown): boolean {
  if (e instanceof DeviceLostError) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /device (is |was |has been )?lost|lost (the )?(gpu )?device|device.*destroyed|GPUDeviceLostInfo/i.test(msg);
}

const DEFAULT_MAX_BAD = 3;

/** Drives one run; create, subscribe through onEvent, then `await run.run()`. */
export class TrainingRun {
  readonly config: RunConfig;
  readonly plans: StagePlan[];
  readonly totalSteps: number;
  readonly history: { steps: LossPoint[]; evals: EvalPoint[] };
  private _status: RunStatus = 'idle';
  private step: number;
  private pos: DataPosition;
  private core: TrainerCoreLike | null = null;
  private readonly byId: Map<string, Sample>;
  private readonly valSamples: Sample[];
  private lastCheckpoint: number | null;
  private pauseRequested = false;
  private stopRequested = false;
  private wake: (() => void) | null = null;
  private lost: { reason: string } | null = null;
  private readonly lostPromise: Promise<never> | null;
  private stepSeconds: number[] = [];

  constructor(private readonly opts: TrainingRunOptions) {
    const cp = opts.resumeFrom;
    const config = cp ? cp.config : opts.config;
    if (cp && cp.config.id !== opts.config.id) {
      throw new Error(`TrainingRun: the checkpoint belongs to run ${cp.config.id} ("${cp.config.name}"), not ${opts.config.id}`);
    }
    validateConfig(config);
    this.config = config;
    this.plans = planStages(opts.samples, config.stages, config);
    this.totalSteps = this.plans.reduce((n, p) => n + p.steps, 0);
    this.byId = new Map(opts.samples.map((s) => [s.id, s]));
    this.valSamples = opts.samples
      .filter((s) => s.split === (config.evalSplit ?? 'val'))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, opts.maxValSamples ?? 64);
    this.step = cp?.step ?? 0;
    this.pos = cp ? { ...cp.position, order: [...cp.position.order] } : { stage: 0, epoch: 0, micro: 0, order: [] };
    if (!cp) this.pos.order = this.orderOf(0, 0);
    this.history = cp ? { steps: [...cp.history.steps], evals: [...cp.history.evals] } : { steps: [], evals: [] };
    this.lastCheckpoint = cp?.step ?? null;
    this.lostPromise = opts.deviceLost
      ? opts.deviceLost.then((info) => {
          const reason = deviceLostReason(info);
          this.lost = { reason };
          this.wake?.();
          throw new DeviceLostError(reason);
        })
      : null;
    this.lostPromise?.catch(() => undefined); // observed through `guard`, never unhandled
  }

  get status(): RunStatus {
    return this._status;
  }

  /** Optimiser steps taken so far (skipped ones included). */
  get stepsDone(): number {
    return this.step;
  }

  /** Pause before the next optimiser step. */
  pause(): void {
    if (this._status === 'running') this.pauseRequested = true;
  }

  resume(): void {
    this.pauseRequested = false;
    this.wake?.();
  }

  /** Stop before the next optimiser step, after writing a checkpoint. */
  stop(): void {
    this.stopRequested = true;
    this.wake?.();
  }

  /** The trainer core (its adapters hold the trained weights) while the run holds it. */
  get trainer(): TrainerCoreLike | null {
    return this.core;
  }

  /** Frees the trainer core (adapters, optimiser state); call once done with its weights. */
  dispose(): void {
    this.core?.dispose();
    this.core = null;
  }

  async run(): Promise<RunResult> {
    if (this._status !== 'idle') throw new Error(`TrainingRun: already ${this._status}; a run object runs once (resume = a new TrainingRun from the checkpoint)`);
    this._status = 'running';
    try {
      this.core = this.opts.createCore(this.config);
      if (this.opts.resumeFrom) {
        this.core.load(this.opts.resumeFrom.state);
        this.notice('info', `Resumed run "${this.config.name}" at step ${this.step} of ${this.totalSteps} (stage ${this.pos.stage + 1}, epoch ${this.pos.epoch + 1}).`);
      }
      if (this.totalSteps === 0) {
        return this.finish('failed', `Run "${this.config.name}" has nothing to train: no train-split sample passes any stage's filter.`);
      }
      this.warnEmptyStages();
      return await this.loop();
    } catch (e) {
      if (this.lost || isDeviceLostError(e)) {
        const reason = this.lost?.reason ?? (e as Error).message;
        return this.finish(
          'failed',
          `The GPU device was lost at step ${this.step} (${reason}). Training stopped; every GPU buffer is gone. ` +
            (this.lastCheckpoint === null
              ? 'No checkpoint was written yet: start the run again once the GPU is back.'
              : `The checkpoint at step ${this.lastCheckpoint} is kept: reload the model and resume from it.`),
        );
      }
      return this.finish('failed', `Training stopped at step ${this.step} by an error: ${(e as Error).message}`);
    }
  }

  private async loop(): Promise<RunResult> {
    const c = this.config;
    const maxBad = this.opts.maxBadSteps ?? DEFAULT_MAX_BAD;
    let bad: number[] = [];
    let evaluatedAt = -1;
    for (;;) {
      if (!this.normalise()) break; // all stages done
      if (this.pauseRequested && !this.stopRequested) await this.pausePoint();
      if (this.lost) throw new DeviceLostError(this.lost.reason);
      if (this.stopRequested) {
        const saved = await this.checkpoint('stop');
        return this.finish('stopped', `Stopped at step ${this.step} of ${this.totalSteps}.${saved ? '' : ' The checkpoint could not be written (see the notice above).'}`);
      }

      const plan = this.plans[this.pos.stage];
      const stage = c.stages[this.pos.stage];
      const stageStep = this.pos.epoch * plan.stepsPerEpoch + Math.floor(this.pos.micro / c.gradAccumulation);
      const lr = learningRate(stageStep, { kind: c.optim.schedule, lr: stage.lr, warmupSteps: c.optim.warmupSteps, totalSteps: plan.steps });
      const started = this.now();
      const microCount = Math.ceil(this.pos.order.length / c.batchSize);
      let lossSum = 0;
      let answerTokens = 0;
      let seqTokens = 0;
      let finite = true;
      for (let k = 0; k < c.gradAccumulation && this.pos.micro < microCount; k++) {
        const ids = this.pos.order.slice(this.pos.micro * c.batchSize, (this.pos.micro + 1) * c.batchSize);
        this.pos.micro++;
        const batch = await this.inputsOf(ids);
        if (batch.length === 0) continue;
        const r = await this.guard(this.core!.microStep(batch));
        if (!r.finite) finite = false;
        if (r.finite && r.tokens > 0) {
          lossSum += r.loss * r.tokens;
          answerTokens += r.tokens;
        }
        seqTokens += batch.reduce((n, x) => n + x.inputIds.length, 0);
      }
      const applied = await this.guard(this.core!.apply(lr));
      this.step++;
      const seconds = Math.max(1e-9, (this.now() - started) / 1000);

      const nonFinite = !finite || (applied.skipped && !Number.isFinite(applied.gradNorm));
      if (nonFinite) {
        bad.push(this.step);
        this.notice('warning', `Step ${this.step}: the loss or a gradient was not finite (NaN/Inf); this update was skipped.`);
        if (bad.length >= maxBad) {
          const msg =
            `Stopped: ${bad.length} consecutive steps (${bad.join(', ')}) had non-finite loss or gradients, so training diverged. ` +
            'They did not change the weights. ' +
            (this.lastCheckpoint === null ? 'No checkpoint was written yet. ' : `The checkpoint at step ${this.lastCheckpoint} is kept. `) +
            'Lower the learning rate (or raise warmup / gradient clipping) and resume, or check the samples of these steps.';
          this.notice('error', msg);
          return this.finish('failed', msg);
        }
      } else if (answerTokens === 0) {
        this.notice('warning', `Step ${this.step}: its samples had no answer tokens to learn from (all skipped or truncated away).`);
      } else {
        bad = [];
        const loss = lossSum / answerTokens;
        this.stepSeconds.push(seconds);
        if (this.stepSeconds.length > 20) this.stepSeconds.shift();
        const avg = this.stepSeconds.reduce((a, b) => a + b, 0) / this.stepSeconds.length;
        this.history.steps.push({ step: this.step, loss, lr, gradNorm: applied.gradNorm });
        this.emit({
          kind: 'step',
          step: this.step,
          totalSteps: this.totalSteps,
          stage: this.pos.stage,
          epoch: this.pos.epoch,
          loss,
          lr,
          gradNorm: applied.gradNorm,
          tokensPerSecond: seqTokens / seconds,
          etaSeconds: avg * Math.max(0, this.totalSteps - this.step),
          gpuBytes: (this.opts.gpuBytes ?? gpuMemoryBytes)(),
        });
      }

      if (c.evalEvery > 0 && this.step % c.evalEvery === 0) {
        await this.evaluate();
        evaluatedAt = this.step;
      }
      // Not during a streak of non-finite steps: the checkpoint kept should precede the trouble,
      // so a resume with a lower learning rate replays those batches.
      const periodic = c.checkpointEvery > 0 && this.step % c.checkpointEvery === 0 && this.step < this.totalSteps;
      if (periodic && bad.length === 0) await this.checkpoint('periodic');
    }
    if (c.evalEvery > 0 && evaluatedAt !== this.step) await this.evaluate();
    const saved = await this.checkpoint('final');
    return this.finish('done', saved ? undefined : 'Training finished, but the final checkpoint could not be written (see the notice above).');
  }

  /** Move past finished epochs and stages; false when the run is complete. */
  private normalise(): boolean {
    const c = this.config;
    for (;;) {
      if (this.pos.stage >= c.stages.length) return false;
      if (this.pos.epoch >= c.stages[this.pos.stage].epochs) {
        this.pos = { stage: this.pos.stage + 1, epoch: 0, micro: 0, order: [] };
        if (this.pos.stage < c.stages.length) this.pos.order = this.orderOf(this.pos.stage, 0);
        continue;
      }
      if (this.pos.micro * c.batchSize >= this.pos.order.length) {
        const epoch = this.pos.epoch + 1;
        this.pos = { stage: this.pos.stage, epoch, micro: 0, order: epoch < c.stages[this.pos.stage].epochs ? this.orderOf(this.pos.stage, epoch) : [] };
        continue;
      }
      return true;
    }
  }

  private orderOf(stage: number, epoch: number): string[] {
    return epochOrder(this.plans[stage].pool, this.config.businessToGeneral, this.config.seed, stage, epoch);
  }

  private async inputsOf(ids: string[]): Promise<ModelInputs[]> {
    const out: ModelInputs[] = [];
    for (const id of ids) {
      const s = this.byId.get(id);
      if (!s) {
        // Only a resumed run's saved order can name a sample that has since been deleted.
        this.notice('warning', `Sample ${id} of the saved data order no longer exists; it is skipped.`);
        continue;
      }
      const x = await this.opts.data.prepare(s);
      if (x) out.push(x);
    }
    return out;
  }

  private async evaluate(): Promise<void> {
    if (this.valSamples.length === 0) return;
    let sum = 0;
    let tokens = 0;
    const bs = this.config.batchSize;
    for (let i = 0; i < this.valSamples.length; i += bs) {
      const batch: ModelInputs[] = [];
      for (const s of this.valSamples.slice(i, i + bs)) {
        const x = await this.opts.data.prepare(s);
        if (x) batch.push(x);
      }
      if (batch.length === 0) continue;
      const r = await this.guard(this.core!.evalLoss(batch));
      if (r.tokens > 0) {
        sum += r.loss * r.tokens;
        tokens += r.tokens;
      }
    }
    if (tokens === 0) return;
    const valLoss = sum / tokens;
    this.history.evals.push({ step: this.step, valLoss });
    this.emit({ kind: 'eval', step: this.step, valLoss });
  }

  /** Writes a checkpoint at the current step; a failed write is reported, not fatal. */
  private async checkpoint(reason: Checkpoint['reason']): Promise<boolean> {
    const sink = this.opts.checkpoints;
    if (!sink) return true;
    if (this.lastCheckpoint === this.step && reason !== 'final') return true;
    this.normalise();
    const state = await this.guard(this.core!.state());
    const cp: Checkpoint = {
      runId: this.config.id,
      step: this.step,
      totalSteps: this.totalSteps,
      createdAt: Date.now(),
      reason,
      config: this.config,
      state,
      position: { ...this.pos, order: [...this.pos.order] },
      history: { steps: [...this.history.steps], evals: [...this.history.evals] },
    };
    try {
      await sink.save(cp, { keepLast: this.opts.keepCheckpoints ?? 2 });
      this.lastCheckpoint = this.step;
      return true;
    } catch (e) {
      this.notice('error', (e as Error).message);
      return false;
    }
  }

  private async pausePoint(): Promise<void> {
    this._status = 'paused';
    this.notice('info', `Paused after step ${this.step}.`);
    while (this.pauseRequested && !this.stopRequested && !this.lost) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    this._status = 'running';
    if (!this.stopRequested && !this.lost) this.notice('info', `Resumed at step ${this.step}.`);
  }

  /** Awaits a core call, failing fast if the device is lost meanwhile. */
  private guard<T>(p: Promise<T>): Promise<T> {
    return this.lostPromise ? Promise.race([p, this.lostPromise]) : p;
  }

  private finish(status: RunStatus, message?: string): RunResult {
    this._status = status;
    if (message && status !== 'failed') this.notice('info', message);
    if (message && status === 'failed' && !message.startsWith('Stopped:')) this.notice('error', message);
    return { status, step: this.step, totalSteps: this.totalSteps, message, lastCheckpoint: this.lastCheckpoint };
  }

  private warnEmptyStages(): void {
    this.plans.forEach((p, i) => {
      const st = this.config.stages[i];
      if (p.epochSize === 0) this.notice('warning', `Stage ${i + 1} ("${st.name}") has no train-split samples passing its filter; it is skipped.`);
      else if (this.config.businessToGeneral > 0 && p.pool.business.length > 0 && p.pool.general.length === 0) {
        this.notice('info', `Stage ${i + 1} ("${st.name}") has no general samples in its pool, so it trains on business data only.`);
      }
    });
  }

  private notice(level: NoticeEvent['level'], message: string): void {
    this.emit({ kind: 'notice', level, message });
  }

  private emit(e: TrainEvent): void {
    this.opts.onEvent?.(e);
  }

  private now(): number {
    return (this.opts.now ?? (() => performance.now()))();
  }
}

function deviceLostReason(info: unknown): string {
  if (info && typeof info === 'object' && 'message' in info) {
    const m = String((info as { message: unknown }).message);
    const r = 'reason' in info ? String((info as { reason: unknown }).reason) : '';
    return [r, m].filter((x) => x && x !== 'undefined').join(': ') || 'device lost';
  }
  return info === undefined ? 'device lost' : String(info);
}

/** Checks the fields the loop divides by or iterates over; errors name the field. */
export function validateConfig(c: RunConfig): void {
  const posInt = (v: number) => Number.isInteger(v) && v >= 1;
  if (!posInt(c.batchSize)) throw new Error(`run config "${c.name}": batchSize must be a positive integer, got ${c.batchSize}`);
  if (!posInt(c.gradAccumulation)) throw new Error(`run config "${c.name}": gradAccumulation must be a positive integer, got ${c.gradAccumulation}`);
  if (!(Number.isInteger(c.evalEvery) && c.evalEvery >= 0)) throw new Error(`run config "${c.name}": evalEvery must be 0 (off) or a positive integer, got ${c.evalEvery}`);
  if (!(Number.isInteger(c.checkpointEvery) && c.checkpointEvery >= 0)) throw new Error(`run config "${c.name}": checkpointEvery must be 0 (end only) or a positive integer, got ${c.checkpointEvery}`);
  if (!(c.businessToGeneral >= 0)) throw new Error(`run config "${c.name}": businessToGeneral must be >= 0, got ${c.businessToGeneral}`);
  if (c.stages.length === 0) throw new Error(`run config "${c.name}": no stages`);
  c.stages.forEach((s, i) => {
    if (!(Number.isInteger(s.epochs) && s.epochs >= 0)) throw new Error(`run config "${c.name}": stage ${i + 1} ("${s.name}") epochs must be a non-negative integer, got ${s.epochs}`);
    if (!(s.lr >= 0 && Number.isFinite(s.lr))) throw new Error(`run config "${c.name}": stage ${i + 1} ("${s.name}") lr must be a finite number >= 0, got ${s.lr}`);
  });
}
