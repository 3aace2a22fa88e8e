// AdamW (decoupled weight decay, bias-corrected moments) over named tf.Variables, written in
// tfjs ops, plus global-norm gradient clipping. Same update as torch.optim.AdamW:
//   p <- p * (1 - lr * wd)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html
// Moments live on the GPU as non-trainable variables; they travel to checkpoints as
// NamedArrays named `<param>.m` / `<param>.v`.
import * as tf from '@tensorflow/tfjs';
import type { NamedArray, OptimSpec } from './train_types';
import type { NamedVariable } from './lora';

/** The AdamW hyper-parameters (the learning rate comes per step, from the schedule). */
export type AdamWSpec = Pick<OptimSpec, 'beta1' | 'beta2' | 'eps' | 'weightDecay'>;

interface Slot {
  name: string;
  p: tf.Variable;
  m: tf.Variable; // same shape as p
  v: tf.Variable;
}

export class AdamW {
  /** Updates made so far (t of the bias correction). */
  t = 0;
  private readonly slots: Slot[];

  constructor(
    params: readonly NamedVariable[],
    private readonly spec: AdamWSpec,
  ) {
    this.slots = params.map(({ name, variable }) => ({
      name,
      p: variable,
      m: tf.variable(tf.zerosLike(variable), false),
      v: tf.variable(tf.zerosLike(variable), false),
    }));
  }

  /** One update with gradients in the params' order (already averaged and clipped). */
  step(grads: readonly tf.Tensor[], lr: number): void {
    if (grads.length !== this.slots.length) throw new Error(`AdamW.step: ${grads.length} gradients for ${this.slots.length} parameters`);
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.spec;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    tf.tidy(() => {
      this.slots.forEach((s, i) => {
        const g = grads[i];
        const m = tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        const p = tf.sub(tf.mul(s.p, 1 - lr * wd), tf.mul(update, lr));
        s.m.assign(m);
        s.v.assign(v);
        s.p.assign(p);
      });
    });
  }

  /** Moments as host arrays, `<param>.m` / `<param>.v`. */
  async moments(): Promise<NamedArray[]> {
    const out: NamedArray[] = [];
    for (const s of this.slots) {
      for (const [suffix, t] of [['m', s.m], ['v', s.v]] as const) {
        out.push({ name: `${s.name}.${suffix}`, shape: [...t.shape], data: (await t.data()) as Float32Array });
      }
    }
    return out;
  }

  /** Restore moments and the step count t; every moment must be present with its shape. */
  loadMoments(arrays: readonly NamedArray[], t: number): void {
    const byName = new Map(arrays.map((a) => [a.name, a]));
    for (const s of this.slots) {
      for (const [suffix, target] of [['m', s.m], ['v', s.v]] as const) {
        const name = `${s.name}.${suffix}`;
        const a = byName.get(name);
        if (!a) throw new Error(`optimizer state: moment ${name} is missing`);
        if (a.data.length !== target.size || a.shape.join() !== target.shape.join()) {
          throw new Error(`optimizer state: ${name} has shape [${a.shape.join(', ')}], expected [${target.shape.join(', ')}]`);
        }
        tf.tidy(() => target.assign(tf.tensor(a.data, target.shape)));
      }
    }
    this.t = t;
  }

  dispose(): void {
    for (const s of this.slots) tf.dispose([s.m, s.v]);
  }
}

/**
 * Sum of many same-shaped tensors as a tree of pairwise adds. Not tf.addN: tfjs-webgpu binds
 * every addN input as a storage buffer in ONE shader, and past the adapter's
 * maxStorageBuffersPerShaderStage (8 under SwiftShader) the pipeline is invalid, nothing runs,
 * and reads return stale buffers without an exception.
 */
export function sumTensors(ts: readonly tf.Tensor[]): tf.Tensor {
  if (ts.length === 0) throw new Error('sumTensors: nothing to sum');
  return tf.tidy(() => {
    let level: tf.Tensor[] = [...ts];
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
      level = next;
    }
    return level[0].clone();
  });
}

/** sum of squares over every gradient, as a scalar tensor (finite iff every gradient is). */
export function sumOfSquares(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => sumTensors(grads.map((g) => tf.sum(tf.square(g)))) as tf.Scalar);
}

/** sqrt(sum of squares over every gradient) as a scalar tensor. */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumOfSquares(grads)) as tf.Scalar);
}

/** The factor that brings a gradient of global norm `norm` down to `maxNorm` (torch clip_grad_norm_). */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}
