// A tiny Idefics3 config for model tests: every dimension small enough for SwiftShader
// (~0.6 GFLOP/s), yet with every structural feature of SmolVLM kept: GQA (4 query heads on
// 2 kv heads), pixel shuffle with factor 2, several layers, untied lm_head, and sizes that
// are not multiples of 4 or 8 (vit_inter_dim 36, lm_vocab_size 70) so kernels' edge paths run.
import { imageSeqLen, type VlmConfig } from '../../src/engine/config';
import type { ModelInputs } from '../../src/engine/inputs';
import { mulberry32 } from '../../src/lib/util/rng';
import { GpuWeights, isLinearWeight } from '../../src/engine/load/gpu_weights';
import { randomHostTensors } from '../../src/engine/load/random_weights';
import type { Quantization } from '../../src/engine/weights';

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

/**
 * A prompt for the tiny model: `before` text tokens, then each tile's image tokens, with
 * `between` text tokens after each tile, then `after` text tokens; random pixels in [-1, 1].
 * Text ids avoid the image id. Layout per tile: [text..., <image> x L_img, ...].
 */
export function tinyInputs(
  config: VlmConfig,
  opts: { nTiles: number; before?: number; between?: number; after?: number; seed?: number },
): ModelInputs {
  const rng = mulberry32(opts.seed ?? 1);
  const perTile = imageSeqLen(config);
  const text = () => 4 + Math.floor(rng() * (config.lm_vocab_size - 5)); // ids 4..V-2, never the image id V-1
  const ids: number[] = [];
  for (let i = 0; i < (opts.before ?? 3); i++) ids.push(text());
  for (let n = 0; n < opts.nTiles; n++) {
    for (let i = 0; i < perTile; i++) ids.push(config.image_token_id);
    for (let i = 0; i < (opts.between ?? 1); i++) ids.push(text());
  }
  for (let i = 0; i < (opts.after ?? 2); i++) ids.push(text());
  const H = config.vit_img_size;
  const pixelValues = Float32Array.from({ length: opts.nTiles * config.vit_num_channels * H * H }, () => 2 * rng() - 1);
  return { inputIds: Int32Array.from(ids), pixelValues, nTiles: opts.nTiles };
}

/**
 * Random tiny weights with linear weights scaled up from the loader's std 0.02 to
 * `linearStd`. At 0.02 the tiny model's attention is almost uniform and its logits are ~0.1,
 * so a wrong RoPE position or a misplaced image feature would change the logits by less than
 * any tolerance; at ~0.2 attention is peaked and such mistakes show.
 */
export function tinyWeights(config: VlmConfig, quantization: Quantization = 'f32', seed = 7, linearStd = 0.2): GpuWeights {
  const gain = linearStd / 0.02;
  const tensors = [...randomHostTensors(config, seed)].map((t) =>
    isLinearWeight(t.name, t.shape) ? { ...t, data: t.data.map((v) => v * gain) } : t,
  );
  return GpuWeights.fromHostTensors(config, { quantization }, tensors);
}
