// The one door every linear layer of the model goes through: `run(x, name)` is
// ops.linear(x, frozen weight) plus, when an adapter set is attached, its contribution. The
// training code (train/lora.ts) plugs in here without the model knowing what LoRA is, and the
// same model object runs with the adapters on or off (DPO's reference model is "adapters off").
//
// N rows, inF input features, outF output features.
import * as tf from '@tensorflow/tfjs';
import type { LinearWeight, Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';

/** What the model asks of an adapter set, per linear module (HF name without `.weight`). */
export interface LinearAdapters {
  /** A trainable weight that replaces the frozen one (fully trained modules), else undefined. */
  weight(name: string): LinearWeight | undefined;
  /**
   * The additive term for x (N, inF) -> (N, outF), or null when `name` has none or the set is
   * off. Runs on the model's ops, so the adapter uses the same kernels (and backward) as the base.
   */
  delta(name: string, x: tf.Tensor2D, ops: Ops): tf.Tensor2D | null;
}

export class ModelLinears {
  /** Attached adapters; null runs the frozen base alone. */
  adapters: LinearAdapters | null = null;

  constructor(
    private readonly weights: ModelWeights,
    private readonly ops: Ops,
  ) {}

  /** x (N, inF) -> (N, outF) through module `name`. */
  run(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const a = this.adapters;
    const y = this.ops.linear(x, a?.weight(name) ?? this.weights.linear(name)); // (N, outF)
    const d = a ? a.delta(name, x, this.ops) : null; // (N, outF)
    if (!d) return y;
    const out = tf.add(y, d) as tf.Tensor2D;
    // callers may run outside a tidy (generation): free the two parts now
    tf.dispose([y, d]);
    return out;
  }
}
