// config.json of SmolVLM-256M-Instruct as published on the Hub (sparse vision_config that relies
// on Idefics3VisionConfig defaults), for what must run at the real dimensions without the real
// weights: the benchmark's random-weight model. Goes through configFromHub like any file.
export const SMOLVLM_256M_CONFIG_JSON = {
  architectures: ['Idefics3ForConditionalGeneration'],
  image_token_id: 49190,
  model_type: 'idefics3',
  pad_token_id: 128002,
  scale_factor: 4,
  text_config: {
    architectures: ['VLlama3ForCausalLM'],
    head_dim: 64,
    hidden_size: 576,
    intermediate_size: 1536,
    max_position_embeddings: 8192,
    model_type: 'llama',
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    pad_token_id: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    vocab_size: 49280,
  },
  tie_word_embeddings: false,
  vision_config: {
    hidden_size: 768,
    image_size: 512,
    max_image_size: { longest_edge: 512 },
    model_type: 'idefics3',
    num_attention_heads: 12,
    patch_size: 16,
    size: { longest_edge: 2048 },
  },
  vocab_size: 49280,
} as const;
