// Idefics3 connector (modality projector): pixel shuffle trades spatial resolution for
// channels, (P, C_v) -> (P/s^2, C_v*s^2), then one bias-free linear maps to the text width C.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/modeling_idefics3.py
// (Idefics3Connector)
//
// N tiles, P patches per tile, s = mp_pixel_shuffle_factor, C_v vision width, C text width.
import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';
import { ModelLinears } from './linears';

export class Connector {
  constructor(
    private readonly weights: ModelWeights,
    private readonly ops: Ops,
    private readonly linears: ModelLinears = new ModelLinears(weights, ops),
  ) {}

  /** x (N, P, C_v) -> (N, P/s^2, C). */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    const s = this.weights.config.mp_pixel_shuffle_factor;
    const C = this.weights.config.lm_hidden_dim;
    return tf.tidy(() => {
      const shuffled = this.ops.pixelShuffle(x, s); // (N, P/s^2, C_v*s^2)
      const [N, Ps, Cs] = shuffled.shape;
      const y = this.linears.run(shuffled.reshape([N * Ps, Cs]) as tf.Tensor2D, 'model.connector.modality_projection.proj'); // (N*P/s^2, C)
      return y.reshape([N, Ps, C]) as tf.Tensor3D; // (N, P/s^2, C)
    });
  }
}
