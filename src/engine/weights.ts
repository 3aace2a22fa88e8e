// What the loader hands the model: every tensor named as in the HF checkpoint, already on
// the GPU in its chosen storage (f32 or quantized). The model never sees file formats.
import type * as tf from '@tensorflow/tfjs';
import type { VlmConfig } from './config';
import type { LinearWeight } from './ops/ops';

export type Quantization = 'f32' | 'q8' | 'q4';

export interface ModelWeights {
  readonly config: VlmConfig;
  readonly quantization: Quantization;
  /**
   * A linear layer by its HF module name without the `.weight` suffix, e.g.
   * `model.text_model.layers.0.self_attn.q_proj`; includes its bias when the checkpoint has one.
   * The patch embedding conv `model.vision_model.embeddings.patch_embedding` is presented as a
   * linear of (C_v, num_channels*patch*patch), flattened in the conv weight's (c, ky, kx) order.
   * Embedding tables (`model.text_model.embed_tokens`) and `lm_head` are linear weights too.
   */
  linear(name: string): LinearWeight;
  /** A plain f32 tensor by its full HF name, e.g. `model.text_model.norm.weight`. */
  tensor(name: string): tf.Tensor;
  has(name: string): boolean;
  /** Bytes of GPU memory the weights hold. */
  gpuBytes(): number;
  dispose(): void;
}
