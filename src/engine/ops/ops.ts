// The one op interface the model is written against. Two implementations:
//   - stock_ops.ts: plain tfjs ops, no custom kernels. The readable reference tests compare
//     against, and the baseline the benchmark measures our kernels against.
//   - custom_ops.ts: our WGSL kernels (shaders/*.wgsl) run as tfjs WebGPU programs.
// Every op takes and returns tf.Tensors and must stay differentiable through tfjs autodiff
// (custom ops wrap their kernels in tf.customGrad; the training issue adds the backward
// kernels), so inference, evaluation and training share one model code path.
//
// B batch, T tokens, S keys, C channels, NH heads, NKV kv heads, HS head size, V vocab.
import type * as tf from '@tensorflow/tfjs';

/** A frozen or trainable linear weight, as the loader placed it on the GPU. y = x W^T (+ b). */
export type LinearWeight =
  | {
      kind: 'f32';
      inF: number;
      outF: number;
      w: tf.Tensor2D; // (outF, inF) float32, HF layout
      bias?: tf.Tensor1D; // (outF)
    }
  | {
      kind: 'q8';
      inF: number;
      outF: number;
      // (outF, ceil(inF/4)) int32: four int8 values per word, little-endian bytes,
      // element k of row o in byte (k % 4) of word k/4; padding bytes are 0.
      q: tf.Tensor2D;
      scale: tf.Tensor1D; // (outF) float32, per output channel: w = q * scale
      bias?: tf.Tensor1D;
    }
  | {
      kind: 'q4';
      inF: number;
      outF: number;
      groupSize: number; // along inF; divides inF rounded up to a multiple of 8
      // (outF, ceil(inF/8)) int32: eight unsigned 4-bit values per word, nibble (k % 8)
      // of word k/8 from the least significant end; w = (nibble - 8) * scale[o, k/groupSize].
      q: tf.Tensor2D;
      scale: tf.Tensor2D; // (outF, ceil(inF/groupSize)) float32
      bias?: tf.Tensor1D;
    };

/** An embedding table, (V, C), stored like a linear weight with outF = V rows, inF = C. */
export type EmbeddingWeight = LinearWeight;

export interface AttentionOptions {
  /** Causal mask; query t (at absolute position S - T + t) sees keys 0..S-T+t. */
  causal: boolean;
  nHeads: number; // NH
  nKvHeads: number; // NKV; NH % NKV == 0 (grouped-query attention)
  headDim: number; // HS
  /** Softmax scale, usually 1/sqrt(HS). */
  scale: number;
  /** (B, S) float32, 1 = attend, 0 = padding; optional. */
  keyMask?: tf.Tensor2D;
}

export interface Ops {
  readonly name: 'custom' | 'stock';

  /** x (N, inF) -> (N, outF). Quantized weights are dequantized inside the op, never materialised. */
  linear(x: tf.Tensor2D, w: LinearWeight): tf.Tensor2D;

  /** Gather rows: ids (N) int32 -> (N, C). */
  embedding(ids: tf.Tensor1D, table: EmbeddingWeight): tf.Tensor2D;

  /** LayerNorm over the last axis: x (N, C), gamma/beta (C) -> (N, C). */
  layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D;

  /** RMSNorm over the last axis: x (N, C), gamma (C) -> (N, C). y = x / rms(x) * gamma. */
  rmsNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor2D;

  /**
   * Rotary embedding, HF Llama convention (rotate_half: pairs (i, i + HS/2)).
   * x (B, T, NHx*HS), positions (B, T) int32 -> same shape.
   */
  rope(x: tf.Tensor3D, positions: tf.Tensor2D, nHeads: number, headDim: number, theta: number): tf.Tensor3D;

  /**
   * Scaled dot-product attention with fused softmax, GQA, optional causal mask and key mask.
   * q (B, T, NH*HS), k/v (B, S, NKV*HS) -> (B, T, NH*HS). Tiled: memory must not grow with T*S.
   */
  attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: AttentionOptions): tf.Tensor3D;

  /** tanh-approximated GELU (gelu_pytorch_tanh), elementwise. */
  geluTanh(x: tf.Tensor2D): tf.Tensor2D;

  /** SiLU-gated product silu(gate) * up, elementwise: (N, I), (N, I) -> (N, I). */
  siluMul(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D;

  /**
   * Idefics3 pixel shuffle: x (B, P, C) with P a square number, factor s ->
   * (B, P/s^2, C*s^2), exactly as transformers' Idefics3Connector.pixel_shuffle.
   */
  pixelShuffle(x: tf.Tensor3D, factor: number): tf.Tensor3D;
}
