// One trainer core: the optimiser side of a run, under the run loop (data order, stages,
// checkpoints live in the trainer loop above it). It owns the adapter set it attaches to the
// model, the AdamW state and the gradient accumulators:
//   microStep(batch)  forward + backward of one padded micro-batch, gradients summed
//   apply(lr)         average over the micro-batches, global-norm clip, AdamW, zero accumulators
// A non-finite loss or gradient poisons the accumulation: the next apply() skips its update
// and says so. Seeded: the same RunConfig.seed gives the same adapter init and dropout masks
// (the mask stream restarts per optimiser step from (seed, step), so a resumed run draws the
// masks an uninterrupted one would), hence the same losses.
import * as tf from '@tensorflow/tfjs';
import type { ModelInputs } from '../inputs';
import type { Idefics3Model } from '../model/vlm';
import { AdapterSet } from './lora';
import { batchLoss, collateBatch, padTokenId, type ChunkOptions } from './loss';
import { AdamW, clipCoefficient, globalNorm, sumOfSquares } from './optimizer';
import { throwIfGpuError } from '../backend';
import type { ApplyResult, MicroStepResult, RunConfig, TrainerState } from './train_types';

export interface TrainerCoreOptions extends ChunkOptions {
  /** Use these adapters instead of fresh ones (e.g. continue from a loaded adapter); the core then owns them. */
  adapters?: AdapterSet;
}

/** The dropout seed of optimiser step `step` of a run seeded `seed`. */
function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;
}

export class TrainerCore {
  readonly adapters: AdapterSet;
  private readonly optimizer: AdamW;
  private readonly vars: tf.Variable[];
  /** Summed gradients of the micro-batches since the last apply(), in `vars` order; null = none yet. */
  private acc: tf.Tensor[] | null = null;
  private micro = 0;
  private poisoned = false;
  private disposed = false;

  constructor(
    readonly model: Idefics3Model,
    readonly run: RunConfig,
    private readonly opts: TrainerCoreOptions = {},
  ) {
    this.adapters = opts.adapters ?? new AdapterSet(model.weights, run.parts, run.lora, run.seed);
    const named = this.adapters.variables();
    this.vars = named.map((n) => n.variable);
    this.optimizer = new AdamW(named, run.optim);
    this.adapters.setDropoutSeed(stepSeed(run.seed, 0));
    model.adapters = this.adapters;
  }

  /** Optimiser steps done. */
  get step(): number {
    return this.optimizer.t;
  }

  /** Forward + backward of one micro-batch (padded to its longest sample); gradients are summed. */
  async microStep(batch: ModelInputs[]): Promise<MicroStepResult> {
    this.assertLive();
    const collated = collateBatch(batch, padTokenId(this.model.config));
    const tokens = collated.targets.rows.length;
    // nothing to learn from: no gradient, and it does not count as a micro-batch
    if (tokens === 0) return { loss: 0, tokens: 0, finite: true };
    this.attach(true);
    const { value, grads } = tf.variableGrads(() => batchLoss(this.model, collated, this.opts), this.vars);
    const g = this.vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
    const sq = sumOfSquares(g); // finite iff every gradient is
    const loss = (await value.data())[0];
    const sqSum = (await sq.data())[0];
    throwIfGpuError(`training micro-step ${this.step}`);
    tf.dispose([value, sq]);
    const finite = Number.isFinite(loss) && Number.isFinite(sqSum);
    if (finite && !this.poisoned) {
      const prev = this.acc;
      if (prev) {
        this.acc = prev.map((a, i) => tf.add(a, g[i]));
        tf.dispose([...prev, ...g]);
      } else {
        this.acc = g; // the first micro-batch's gradients become the accumulators as they are
      }
    } else {
      tf.dispose(g);
    }
    if (!finite) this.poisoned = true;
    this.micro++;
    return { loss, tokens, finite };
  }

  /** Average, clip, AdamW with learning rate `lr`, zero the accumulators. */
  async apply(lr: number): Promise<ApplyResult> {
    this.assertLive();
    const acc = this.acc;
    const micro = this.micro;
    const poisoned = this.poisoned;
    this.acc = null;
    this.micro = 0;
    this.poisoned = false;
    if (!acc || poisoned) {
      if (acc) tf.dispose(acc);
      return { gradNorm: poisoned ? NaN : 0, skipped: true };
    }
    const avg = tf.tidy(() => acc.map((a) => tf.div(a, micro)));
    tf.dispose(acc);
    const normT = globalNorm(avg);
    const gradNorm = (await normT.data())[0];
    throwIfGpuError(`optimiser step ${this.step}`);
    normT.dispose();
    if (!Number.isFinite(gradNorm)) {
      tf.dispose(avg);
      return { gradNorm, skipped: true };
    }
    const coef = clipCoefficient(gradNorm, this.run.optim.gradClip);
    const clipped = coef < 1 ? tf.tidy(() => avg.map((a) => tf.mul(a, coef))) : avg;
    this.optimizer.step(clipped, lr);
    tf.dispose(avg);
    if (clipped !== avg) tf.dispose(clipped);
    this.adapters.setDropoutSeed(stepSeed(this.run.seed, this.optimizer.t));
    return { gradNorm, skipped: false };
  }

  /** Mean CE over the batch's answer tokens with dropout off and no gradients (adapters as `enabled` says). */
  async evalLoss(batch: ModelInputs[]): Promise<{ loss: number; tokens: number }> {
    this.assertLive();
    const collated = collateBatch(batch, padTokenId(this.model.config));
    const tokens = collated.targets.rows.length;
    if (tokens === 0) return { loss: 0, tokens: 0 };
    this.attach(false);
    const t = tf.tidy(() => batchLoss(this.model, collated, this.opts));
    const loss = (await t.data())[0];
    throwIfGpuError('validation loss');
    t.dispose();
    return { loss, tokens };
  }

  /** Everything needed to continue exactly: trainable tensors, moments, step. */
  async state(): Promise<TrainerState> {
    this.assertLive();
    return { step: this.optimizer.t, params: await this.adapters.toNamedArrays(), moments: await this.optimizer.moments() };
  }

  /** Continue from a saved state; pending accumulated gradients are dropped. */
  load(state: TrainerState): void {
    this.assertLive();
    this.adapters.loadNamedArrays(state.params);
    this.optimizer.loadMoments(state.moments, state.step);
    if (this.acc) tf.dispose(this.acc);
    this.acc = null;
    this.micro = 0;
    this.poisoned = false;
    this.adapters.setDropoutSeed(stepSeed(this.run.seed, state.step));
  }

  /** Frees the optimiser state, accumulators and adapters, and detaches them from the model. */
  dispose(): void {
    if (this.disposed) return;
    if (this.model.adapters === this.adapters) this.model.adapters = null;
    if (this.acc) tf.dispose(this.acc);
    this.optimizer.dispose();
    this.adapters.dispose();
    this.disposed = true;
  }

  /**
   * Make sure the model runs our adapters, with dropout as `training` says. `enabled` is left
   * as the caller set it (evalLoss with the adapters off scores the base model); training with
   * them off would train nothing and is refused.
   */
  private attach(training: boolean): void {
    if (training && !this.adapters.enabled) throw new Error('TrainerCore.microStep: the adapters are switched off (enabled = false); nothing would train');
    this.model.adapters = this.adapters;
    this.adapters.training = training;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('TrainerCore: used after dispose()');
  }
}
