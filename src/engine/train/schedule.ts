// Learning-rate schedules with linear warmup, as pure functions of the optimiser step, with
// the semantics of transformers' get_{constant,linear,cosine}_schedule_with_warmup: during
// warmup the rate rises linearly from 0 (step 0 gets 0) to the peak at step `warmupSteps`;
// after it, constant stays at the peak, linear falls to 0 at `totalSteps`, cosine follows half
// a cosine from the peak to 0 at `totalSteps`.
// https://github.com/huggingface/transformers/blob/main/src/transformers/optimization.py
import type { ScheduleKind } from './train_types';

export interface ScheduleSpec {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  /** Optimiser steps in the whole schedule (a stage's steps when stages restart it). */
  totalSteps: number;
}

/** Multiplier of the peak rate for optimiser step `step` (0-based: the update about to be made). */
export function lrFactor(step: number, s: Omit<ScheduleSpec, 'lr'>): number {
  if (step < s.warmupSteps) return step / Math.max(1, s.warmupSteps);
  if (s.kind === 'constant') return 1;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  if (s.kind === 'linear') return Math.max(0, 1 - progress);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}

/** The learning rate for optimiser step `step`. */
export function learningRate(step: number, s: ScheduleSpec): number {
  return s.lr * lrFactor(step, s);
}
