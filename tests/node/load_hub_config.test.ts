// configFromHub on SmolVLM-256M-Instruct's config.json (its layout and values as published on
// the Hub: sparse vision_config relying on Idefics3VisionConfig defaults, Llama text_config),
// transformers' defaults for absent fields, and errors that name file and field.
import { describe, expect, it } from 'vitest';
import { imageSeqLen } from '../../src/engine/config';
import { configFromHub, hubConfigFromVlm } from '../../src/engine/load/hub_config';
import { parameterCount } from '../../src/engine/load/weight_names';
import { tinyConfig } from '../util/tiny_config';

function smolVlm256mConfig(): Record<string, any> {
  return {
    architectures: ['Idefics3ForConditionalGeneration'],
    image_token_id: 49190,
    model_type: 'idefics3',
    pad_token_id: 128002,
    scale_factor: 4,
    text_config: {
      _flash_attn_2_enabled: true,
      _name_or_path: 'None',
      architectures: ['VLlama3ForCausalLM'],
      head_dim: 64,
      hidden_size: 576,
      initializer_range: 0.02,
      intermediate_size: 1536,
      is_llama_config: true,
      max_position_embeddings: 8192,
      model_type: 'llama',
      neftune_noise_alpha: 0.0,
      num_attention_heads: 9,
      num_hidden_layers: 30,
      num_key_value_heads: 3,
      pad_token_id: 2,
      perceiver_config: { model_type: 'vllama3', resampler_depth: 3, resampler_n_latents: 64 },
      pixel_shuffle_factor: 4,
      qk_layer_norms: false,
      rms_norm_eps: 1e-5,
      rope_interleaved: false,
      rope_theta: 100000,
      torch_dtype: 'bfloat16',
      use_resampler: false,
      vocab_size: 49280,
    },
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    transformers_version: '4.46.0',
    use_cache: true,
    vision_config: {
      hidden_size: 768,
      image_size: 512,
      max_image_size: { longest_edge: 512 },
      model_type: 'idefics3',
      num_attention_heads: 12,
      patch_size: 16,
      size: { longest_edge: 2048 },
      tie_word_embeddings: false,
      use_base_siglip: false,
    },
    vocab_size: 49280,
  };
}

describe('configFromHub', () => {
  it('maps SmolVLM-256M-Instruct, filling vision defaults from Idefics3VisionConfig', () => {
    const c = configFromHub(smolVlm256mConfig());
    expect(c).toEqual({
      vit_hidden_dim: 768,
      vit_inter_dim: 3072, // default
      vit_n_layers: 12, // default
      vit_n_heads: 12,
      vit_img_size: 512,
      vit_patch_size: 16,
      vit_num_channels: 3,
      vit_ln_eps: 1e-6,
      vit_act: 'gelu_pytorch_tanh',
      mp_pixel_shuffle_factor: 4,
      lm_hidden_dim: 576,
      lm_inter_dim: 1536,
      lm_n_layers: 30,
      lm_n_heads: 9,
      lm_n_kv_heads: 3,
      lm_head_dim: 64,
      lm_vocab_size: 49280,
      lm_max_position: 8192,
      lm_rms_eps: 1e-5,
      lm_rope_theta: 100000,
      lm_tie_embeddings: false,
      lm_act: 'silu',
      image_token_id: 49190,
      bos_token_id: 1, // LlamaConfig default
      eos_token_id: 2,
      pad_token_id: 2, // text_config's, not Idefics3's 128002
    });
    expect(imageSeqLen(c)).toBe(64);
    // SmolVLM-256M: ~256M parameters (93M vision + 135M text + untied head + connector).
    expect(parameterCount(c)).toBeGreaterThan(250e6);
    expect(parameterCount(c)).toBeLessThan(262e6);
  });

  it('fills LlamaConfig defaults for an almost empty text_config', () => {
    // Idefics3VisionConfig's defaults alone (224 px / 32 px = 7 patches per side) cannot be
    // pixel-shuffled by the default factor 2, so the image size is given.
    const cfg = { model_type: 'idefics3', image_token_id: 5, text_config: { hidden_size: 64, num_attention_heads: 4 }, vision_config: { image_size: 256 } };
    const c = configFromHub(cfg);
    expect(c.lm_n_kv_heads).toBe(4); // = heads
    expect(c.lm_head_dim).toBe(16); // hidden / heads
    expect(c.lm_rope_theta).toBe(10000);
    expect(c.lm_rms_eps).toBe(1e-6);
    expect(c.lm_max_position).toBe(2048);
    expect(c.lm_vocab_size).toBe(32000);
    expect(c.vit_hidden_dim).toBe(1152);
    expect(c.vit_patch_size).toBe(32);
    expect(c.vit_num_channels).toBe(3);
    expect(c.vit_n_heads).toBe(16);
    expect(c.mp_pixel_shuffle_factor).toBe(2);
    expect(c.lm_tie_embeddings).toBe(false);
    expect(c.pad_token_id).toBeNull(); // 128002 is outside the 32000 vocabulary
    expect(() => configFromHub({ model_type: 'idefics3', text_config: { vocab_size: 200000 } })).toThrow(/scale_factor \(2\) must divide .* = 7/);
  });

  it('reads rope_theta from transformers 5 rope_parameters', () => {
    const cfg = smolVlm256mConfig();
    delete cfg.text_config.rope_theta;
    cfg.text_config.rope_parameters = { rope_type: 'default', rope_theta: 123456 };
    expect(configFromHub(cfg).lm_rope_theta).toBe(123456);
  });

  it('round-trips through hubConfigFromVlm', () => {
    for (const c of [tinyConfig(), tinyConfig({ lm_tie_embeddings: true, pad_token_id: null }), configFromHub(smolVlm256mConfig())]) {
      expect(configFromHub(JSON.parse(JSON.stringify(hubConfigFromVlm(c))))).toEqual(c);
    }
  });

  const bad: [string, (c: Record<string, any>) => void, RegExp][] = [
    ['another model type', (c) => (c.model_type = 'llava'), /^config\.json: model_type is "llava"; only "idefics3"/],
    ['another architecture', (c) => (c.architectures = ['LlavaForConditionalGeneration']), /config\.json: architectures is \["LlavaForConditionalGeneration"\]; only Idefics3ForConditionalGeneration/],
    ['a string where a number belongs', (c) => (c.text_config.hidden_size = '576'), /config\.json: text_config\.hidden_size must be an integer >= 1, got "576"/],
    ['a fractional layer count', (c) => (c.vision_config.num_hidden_layers = 2.5), /vision_config\.num_hidden_layers must be an integer/],
    ['another activation', (c) => (c.text_config.hidden_act = 'gelu'), /text_config\.hidden_act is "gelu"; only "silu"/],
    ['another vision activation', (c) => (c.vision_config.hidden_act = 'quick_gelu'), /vision_config\.hidden_act is "quick_gelu"/],
    ['a non-llama text model', (c) => (c.text_config.model_type = 'mistral'), /text_config\.model_type is "mistral"/],
    ['kv heads not dividing heads', (c) => (c.text_config.num_key_value_heads = 4), /num_key_value_heads \(4\) must divide num_attention_heads \(9\)/],
    ['rope scaling', (c) => (c.text_config.rope_scaling = { type: 'linear', factor: 2 }), /text_config\.rope_scaling\.type is "linear"/],
    ['attention biases', (c) => (c.text_config.attention_bias = true), /text_config\.attention_bias is true/],
    ['an image token outside the vocab', (c) => (c.image_token_id = 50000), /image_token_id \(50000\) is outside the vocabulary/],
    ['a scale factor not dividing the patch grid', (c) => (c.scale_factor = 3), /scale_factor \(3\) must divide the patches per side \(image_size\/patch_size = 32\)/],
    ['a text_config that is not an object', (c) => (c.text_config = 5), /config\.json: text_config must be an object/],
    ['a wrong-typed tie flag', (c) => (c.tie_word_embeddings = 'no'), /tie_word_embeddings must be true or false/],
  ];
  for (const [what, mutate, msg] of bad) {
    it(`rejects ${what}, naming file and field`, () => {
      const cfg = smolVlm256mConfig();
      mutate(cfg);
      expect(() => configFromHub(cfg)).toThrow(msg);
    });
  }

  it('names the file it was given and rejects non-objects', () => {
    expect(() => configFromHub({ model_type: 'x' }, 'models/foo/config.json')).toThrow(/^models\/foo\/config\.json: model_type/);
    expect(() => configFromHub([], 'c.json')).toThrow(/c\.json: expected a JSON object/);
  });
});
