// A tiny Idefics3 config for model tests: every dimension small enough for SwiftShader
// (~0.6 GFLOP/s), yet with every structural feature of SmolVLM kept: GQA (4 query heads on
// 2 kv heads), pixel shuffle with factor 2, several layers, untied lm_head, and sizes that
// are not multiples of 4 or 8 (vit_inter_dim 36, lm_vocab_size 70) so kernels' edge paths run.
import type { VlmConfig } from '../../src/engine/config';

export function tinyConfig(overrides: Partial<VlmConfig> = {}): VlmConfig {
  return {
    vit_hidden_dim: 16, // C_v
    vit_inter_dim: 36,
    vit_n_layers: 2,
    vit_n_heads: 2, // HS_v = 8
    vit_img_size: 16, // 4x4 patches of 4 px
    vit_patch_size: 4,
    vit_num_channels: 3,
    vit_ln_eps: 1e-6,
    vit_act: 'gelu_pytorch_tanh',

    mp_pixel_shuffle_factor: 2, // 16 patches -> 4 image tokens per tile

    lm_hidden_dim: 32, // C
    lm_inter_dim: 56,
    lm_n_layers: 2,
    lm_n_heads: 4, // NH
    lm_n_kv_heads: 2, // NKV
    lm_head_dim: 8, // HS
    lm_vocab_size: 70, // V
    lm_max_position: 128,
    lm_rms_eps: 1e-5,
    lm_rope_theta: 10000,
    lm_tie_embeddings: false,
    lm_act: 'silu',

    image_token_id: 69,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    ...overrides,
  };
}

/** Token ids in the tiny vocabulary with a fixed meaning in tests. */
export const TINY_TOKENS = {
  pad: 0,
  bos: 1,
  eos: 2,
  endOfUtterance: 3,
  image: 69,
} as const;
