// One flat config for the whole Idefics3 model (nanoVLM style: prefixed fields).
// `configFromHub` in load/hub_config.ts is the ONE place that maps a Hub config.json into it.
//
// Letters used across the engine:
// B batch, T tokens (queries), S keys (cached + new), C channels (hidden), NH heads,
// NKV key/value heads, HS head size, V vocab, P patches, I intermediate (MLP) size.

export interface VlmConfig {
  // vision encoder (SigLIP)
  vit_hidden_dim: number; // C_v
  vit_inter_dim: number; // I_v
  vit_n_layers: number;
  vit_n_heads: number;
  vit_img_size: number; // square input side, pixels
  vit_patch_size: number;
  vit_num_channels: number;
  vit_ln_eps: number;
  vit_act: 'gelu_pytorch_tanh';

  // connector
  mp_pixel_shuffle_factor: number; // scale_factor: [P, C_v] -> [P/s^2, C_v*s^2]

  // text decoder (Llama)
  lm_hidden_dim: number; // C
  lm_inter_dim: number; // I
  lm_n_layers: number;
  lm_n_heads: number; // NH
  lm_n_kv_heads: number; // NKV
  lm_head_dim: number; // HS (hidden / heads unless the config says otherwise)
  lm_vocab_size: number; // V
  lm_max_position: number;
  lm_rms_eps: number;
  lm_rope_theta: number;
  lm_tie_embeddings: boolean;
  lm_act: 'silu';

  // special tokens
  image_token_id: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
}

/** Patches per side of one image tile. */
export function vitPatchesPerSide(c: VlmConfig): number {
  return Math.floor(c.vit_img_size / c.vit_patch_size);
}

/** Image tokens the connector emits per tile: (side/patch)^2 / s^2 (64 for SmolVLM-256M). */
export function imageSeqLen(c: VlmConfig): number {
  const p = vitPatchesPerSide(c);
  return (p * p) / (c.mp_pixel_shuffle_factor * c.mp_pixel_shuffle_factor);
}
