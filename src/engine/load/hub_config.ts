// The ONE place that maps a Hugging Face Idefics3 config.json (SmolVLM) into VlmConfig.
// Absent fields take the defaults transformers would give them, so a config that loads in
// transformers loads here with the same meaning:
//   top level      Idefics3Config: image_token_id 128257, scale_factor 2, tie_word_embeddings
//                  false, pad_token_id 128002
//   vision_config  Idefics3VisionConfig (built from the dict whatever its model_type says):
//                  hidden 1152, intermediate 3072, 12 layers, 16 heads, 3 channels, image 224,
//                  patch 32, gelu_pytorch_tanh, layer_norm_eps 1e-6
//   text_config    LlamaConfig (model_type defaults to "llama"): vocab 32000, hidden 4096,
//                  intermediate 11008, 32 layers, 32 heads, kv heads = heads, head_dim =
//                  hidden/heads, max positions 2048, rms_norm_eps 1e-6, rope_theta 10000,
//                  silu, bos 1, eos 2, pad none, no attention/MLP biases, no rope scaling
// Source: transformers models/idefics3/configuration_idefics3.py, models/llama/configuration_llama.py.
// Anything the engine cannot run (another architecture, biases, rope scaling, other
// activations) is an error naming the file and the field, never a silent approximation.
import type { VlmConfig } from '../config';

type Json = Record<string, unknown>;

const SUPPORTED_ARCH = 'Idefics3ForConditionalGeneration';

class ConfigReader {
  constructor(
    private readonly file: string,
    private readonly obj: Json,
    private readonly prefix: string,
  ) {}

  fail(field: string, why: string): never {
    throw new Error(`${this.file}: ${this.prefix}${field} ${why}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  raw(field: string): unknown {
    return this.obj[field];
  }

  int(field: string, dflt: number, min = 1): number {
    const v = this.has(field) ? this.obj[field] : dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      this.fail(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  num(field: string, dflt: number): number {
    const v = this.has(field) ? this.obj[field] : dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      this.fail(field, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.has(field) ? this.obj[field] : dflt;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(field: string, dflt: string): string {
    const v = this.has(field) ? this.obj[field] : dflt;
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A token id: an integer, or a list whose first entry is used; null when absent. */
  tokenId(field: string, dflt: number | null): number | null {
    let v = this.has(field) ? this.obj[field] : dflt;
    if (Array.isArray(v)) v = v[0];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      this.fail(field, `must be a token id (integer >= 0), got ${JSON.stringify(this.obj[field])}`);
    }
    return v;
  }

  sub(field: string): ConfigReader {
    const v = this.obj[field];
    if (v === undefined || v === null) return new ConfigReader(this.file, {}, `${this.prefix}${field}.`);
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be an object, got ${JSON.stringify(v)}`);
    return new ConfigReader(this.file, v as Json, `${this.prefix}${field}.`);
  }
}

/** Map an HF Idefics3 config.json (already parsed) to VlmConfig; throws naming file and field. */
export function configFromHub(configJson: unknown, file = 'config.json'): VlmConfig {
  if (typeof configJson !== 'object' || configJson === null || Array.isArray(configJson)) {
    throw new Error(`${file}: expected a JSON object at the top level`);
  }
  const top = new ConfigReader(file, configJson as Json, '');

  const modelType = top.str('model_type', '');
  if (modelType !== 'idefics3') {
    top.fail('model_type', `is ${JSON.stringify(modelType || null)}; only "idefics3" (SmolVLM / Idefics3) is supported`);
  }
  if (top.has('architectures')) {
    const archs = top.raw('architectures');
    if (!Array.isArray(archs) || !archs.includes(SUPPORTED_ARCH)) {
      top.fail('architectures', `is ${JSON.stringify(archs)}; only ${SUPPORTED_ARCH} is supported`);
    }
  }

  const v = top.sub('vision_config');
  const vitHidden = v.int('hidden_size', 1152);
  const vitHeads = v.int('num_attention_heads', 16);
  if (vitHidden % vitHeads !== 0) {
    v.fail('hidden_size', `(${vitHidden}) must be divisible by num_attention_heads (${vitHeads})`);
  }
  const vitAct = v.str('hidden_act', 'gelu_pytorch_tanh');
  if (vitAct !== 'gelu_pytorch_tanh') v.fail('hidden_act', `is "${vitAct}"; only "gelu_pytorch_tanh" is supported`);
  const imgSize = v.int('image_size', 224);
  const patch = v.int('patch_size', 32);
  if (patch > imgSize) v.fail('patch_size', `(${patch}) is larger than image_size (${imgSize})`);

  const scale = top.int('scale_factor', 2);
  const side = Math.floor(imgSize / patch);
  if (side % scale !== 0) {
    top.fail('scale_factor', `(${scale}) must divide the patches per side (image_size/patch_size = ${side})`);
  }

  const t = top.sub('text_config');
  const textType = t.str('model_type', 'llama');
  if (textType !== 'llama') t.fail('model_type', `is "${textType}"; only "llama" text models are supported`);
  const hidden = t.int('hidden_size', 4096);
  const heads = t.int('num_attention_heads', 32);
  const kvHeads = t.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    t.fail('num_key_value_heads', `(${kvHeads}) must divide num_attention_heads (${heads})`);
  }
  if (!t.has('head_dim') && hidden % heads !== 0) {
    t.fail('hidden_size', `(${hidden}) must be divisible by num_attention_heads (${heads}) when head_dim is absent`);
  }
  const headDim = t.int('head_dim', Math.floor(hidden / heads));
  if (headDim % 2 !== 0) t.fail('head_dim', `(${headDim}) must be even for rotary embeddings`);
  const act = t.str('hidden_act', 'silu');
  if (act !== 'silu') t.fail('hidden_act', `is "${act}"; only "silu" is supported`);
  if (t.bool('attention_bias', false)) t.fail('attention_bias', 'is true; attention projections with biases are not supported');
  if (t.bool('mlp_bias', false)) t.fail('mlp_bias', 'is true; MLP projections with biases are not supported');

  // Rope: transformers 4.x keeps rope_theta + rope_scaling, 5.x a rope_parameters object.
  const ropeParams = t.sub('rope_parameters');
  const ropeScaling = t.sub('rope_scaling');
  for (const [reader, present] of [
    [ropeScaling, t.has('rope_scaling')],
    [ropeParams, t.has('rope_parameters')],
  ] as const) {
    if (!present) continue;
    const type = reader.has('rope_type') ? reader.str('rope_type', 'default') : reader.str('type', 'default');
    if (type !== 'default') reader.fail(reader.has('rope_type') ? 'rope_type' : 'type', `is "${type}"; only unscaled rotary embeddings are supported`);
  }
  const ropeTheta = t.has('rope_theta') ? t.num('rope_theta', 10000) : ropeParams.num('rope_theta', 10000);

  const vocab = t.int('vocab_size', 32000);
  const imageTokenId = top.int('image_token_id', 128257, 0);
  if (imageTokenId >= vocab) {
    top.fail('image_token_id', `(${imageTokenId}) is outside the vocabulary (text_config.vocab_size ${vocab})`);
  }
  // Idefics3's own default pad id (128002) lies outside SmolVLM's vocabulary; the text
  // config's pad id is the one the language model actually uses.
  let pad = t.tokenId('pad_token_id', null);
  if (pad === null) {
    const topPad = top.tokenId('pad_token_id', null);
    pad = topPad !== null && topPad < vocab ? topPad : null;
  }

  return {
    vit_hidden_dim: vitHidden,
    vit_inter_dim: v.int('intermediate_size', 3072),
    vit_n_layers: v.int('num_hidden_layers', 12),
    vit_n_heads: vitHeads,
    vit_img_size: imgSize,
    vit_patch_size: patch,
    vit_num_channels: v.int('num_channels', 3),
    vit_ln_eps: v.num('layer_norm_eps', 1e-6),
    vit_act: 'gelu_pytorch_tanh',

    mp_pixel_shuffle_factor: scale,

    lm_hidden_dim: hidden,
    lm_inter_dim: t.int('intermediate_size', 11008),
    lm_n_layers: t.int('num_hidden_layers', 32),
    lm_n_heads: heads,
    lm_n_kv_heads: kvHeads,
    lm_head_dim: headDim,
    lm_vocab_size: vocab,
    lm_max_position: t.int('max_position_embeddings', 2048),
    lm_rms_eps: t.num('rms_norm_eps', 1e-6),
    lm_rope_theta: ropeTheta,
    // Idefics3ForConditionalGeneration ties lm_head to the text embeddings by the top-level flag.
    lm_tie_embeddings: top.bool('tie_word_embeddings', false),
    lm_act: 'silu',

    image_token_id: imageTokenId,
    bos_token_id: t.tokenId('bos_token_id', 1),
    eos_token_id: t.tokenId('eos_token_id', 2),
    pad_token_id: pad,
  };
}

/**
 * The inverse for the fields VlmConfig holds: a config.json in the Hub's layout (used to write
 * the tiny fixture model and, later, exported models). configFromHub(hubConfigFromVlm(c)) == c.
 */
export function hubConfigFromVlm(c: VlmConfig): Json {
  return {
    architectures: [SUPPORTED_ARCH],
    image_token_id: c.image_token_id,
    model_type: 'idefics3',
    scale_factor: c.mp_pixel_shuffle_factor,
    text_config: {
      architectures: ['VLlama3ForCausalLM'],
      bos_token_id: c.bos_token_id,
      eos_token_id: c.eos_token_id,
      head_dim: c.lm_head_dim,
      hidden_act: c.lm_act,
      hidden_size: c.lm_hidden_dim,
      intermediate_size: c.lm_inter_dim,
      max_position_embeddings: c.lm_max_position,
      model_type: 'llama',
      num_attention_heads: c.lm_n_heads,
      num_hidden_layers: c.lm_n_layers,
      num_key_value_heads: c.lm_n_kv_heads,
      pad_token_id: c.pad_token_id,
      rms_norm_eps: c.lm_rms_eps,
      rope_theta: c.lm_rope_theta,
      vocab_size: c.lm_vocab_size,
    },
    tie_word_embeddings: c.lm_tie_embeddings,
    torch_dtype: 'float32',
    vision_config: {
      hidden_act: c.vit_act,
      hidden_size: c.vit_hidden_dim,
      image_size: c.vit_img_size,
      intermediate_size: c.vit_inter_dim,
      layer_norm_eps: c.vit_ln_eps,
      model_type: 'idefics3_vision',
      num_attention_heads: c.vit_n_heads,
      num_channels: c.vit_num_channels,
      num_hidden_layers: c.vit_n_layers,
      patch_size: c.vit_patch_size,
    },
    vocab_size: c.lm_vocab_size,
  };
}
