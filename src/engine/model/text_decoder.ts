// Llama text decoder as SmolVLM uses it (transformers LlamaModel + lm_head): token embedding,
// L blocks of x + o_proj(attn(RoPE(q), RoPE(k), v)) and x + down(silu(gate) * up), each behind
// an RMSNorm, grouped-query causal attention, a final RMSNorm and the lm_head (tied to the
// embedding or not: the weights object answers `lm_head` either way).
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py
//
// B batch, T new tokens, S keys (cached + new), C channels, NH heads, NKV kv heads,
// HS head size, I intermediate size, V vocab.
import * as tf from '@tensorflow/tfjs';
import type { VlmConfig } from '../config';
import type { Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';
import { ModelLinears } from './linears';
import type { KvCache } from './kv_cache';

const PREFIX = 'model.text_model';

export interface DecoderStepInputs {
  B: number;
  T: number;
  /** (B, T) int32 RoPE positions. */
  positions: tf.Tensor2D;
  /** (B, S) float32 1/0 key mask; omitted when every key is real. */
  keyMask?: tf.Tensor2D;
  /** When given, each layer appends its new K/V and attends over all cached keys. */
  cache?: KvCache;
}

export class TextDecoder {
  private readonly c: VlmConfig;

  constructor(
    private readonly weights: ModelWeights,
    private readonly ops: Ops,
    private readonly linears: ModelLinears = new ModelLinears(weights, ops),
  ) {
    this.c = weights.config;
  }

  /** ids (N) int32 -> (N, C). */
  embed(ids: tf.Tensor1D): tf.Tensor2D {
    return this.ops.embedding(ids, this.weights.linear(`${PREFIX}.embed_tokens`));
  }

  /** x (B*T, C) embeddings -> (B*T, C) final-normed hidden states. */
  forward(x: tf.Tensor2D, step: DecoderStepInputs): tf.Tensor2D {
    return tf.tidy(() => {
      let h = x;
      // one tidy per block, so a block's intermediates are freed before the next one runs
      for (let l = 0; l < this.c.lm_n_layers; l++) {
        const prev = h;
        h = tf.tidy(() => this.block(prev, l, step));
        if (prev !== x) prev.dispose();
      }
      return this.ops.rmsNorm(h, this.vec(`${PREFIX}.norm.weight`), this.c.lm_rms_eps);
    });
  }

  /** h (N, C) -> logits (N, V). */
  logits(h: tf.Tensor2D): tf.Tensor2D {
    return this.linears.run(h, 'lm_head');
  }

  block(x: tf.Tensor2D, l: number, step: DecoderStepInputs): tf.Tensor2D {
    const c = this.c;
    const ops = this.ops;
    const pre = `${PREFIX}.layers.${l}`;
    const { B, T } = step;
    const NH = c.lm_n_heads;
    const NKV = c.lm_n_kv_heads;
    const HS = c.lm_head_dim;

    const h1 = ops.rmsNorm(x, this.vec(`${pre}.input_layernorm.weight`), c.lm_rms_eps); // (B*T, C)
    const q0 = this.linears.run(h1, `${pre}.self_attn.q_proj`).reshape([B, T, NH * HS]) as tf.Tensor3D; // (B, T, NH*HS)
    const k0 = this.linears.run(h1, `${pre}.self_attn.k_proj`).reshape([B, T, NKV * HS]) as tf.Tensor3D; // (B, T, NKV*HS)
    let v = this.linears.run(h1, `${pre}.self_attn.v_proj`).reshape([B, T, NKV * HS]) as tf.Tensor3D; // (B, T, NKV*HS)
    const q = ops.rope(q0, step.positions, NH, HS, c.lm_rope_theta);
    let k = ops.rope(k0, step.positions, NKV, HS, c.lm_rope_theta);
    if (step.cache) ({ k, v } = step.cache.append(l, k, v)); // (B, S, NKV*HS)
    const att = ops.attention(q, k, v, {
      causal: true,
      nHeads: NH,
      nKvHeads: NKV,
      headDim: HS,
      scale: 1 / Math.sqrt(HS),
      keyMask: step.keyMask,
    }); // (B, T, NH*HS)
    const o = this.linears.run(att.reshape([B * T, NH * HS]) as tf.Tensor2D, `${pre}.self_attn.o_proj`); // (B*T, C)
    const x1 = x.add(o) as tf.Tensor2D;

    const h2 = ops.rmsNorm(x1, this.vec(`${pre}.post_attention_layernorm.weight`), c.lm_rms_eps);
    const gate = this.linears.run(h2, `${pre}.mlp.gate_proj`); // (B*T, I)
    const up = this.linears.run(h2, `${pre}.mlp.up_proj`); // (B*T, I)
    const down = this.linears.run(ops.siluMul(gate, up), `${pre}.mlp.down_proj`); // (B*T, C)
    return x1.add(down) as tf.Tensor2D;
  }

  private vec(name: string): tf.Tensor1D {
    return this.weights.tensor(name) as tf.Tensor1D;
  }
}
