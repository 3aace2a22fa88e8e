// The single source of truth for which tensors an Idefics3 checkpoint holds, under which HF
// names and with which shapes. Random weights, the tiny fixture model and the checkpoint
// validator all read this list, so a name typo can only exist in one place.
//
// Names follow transformers' Idefics3ForConditionalGeneration state dict (as saved in
// HuggingFaceTB/SmolVLM-256M-Instruct's model.safetensors):
//   model.vision_model.*   SigLIP encoder (Idefics3VisionTransformer): conv patch embedding with
//                          bias, learned position embedding, pre-LN blocks with biased linears
//   model.connector.*      pixel shuffle + one bias-free linear (Idefics3SimpleMLP.proj)
//   model.text_model.*     LlamaModel: bias-free projections, RMSNorm
//   lm_head.weight         absent from the state dict when tie_word_embeddings is set
// C_v vision hidden, I_v vision MLP, P patches per tile, C text hidden, I text MLP, V vocab,
// NH / NKV heads, HS head size, s pixel shuffle factor.
import { vitPatchesPerSide, type VlmConfig } from '../config';

export type Shape = readonly number[];

/** What a tensor is, which decides how the loader stores it. */
export type TensorRole =
  | 'linear' // (outF, inF) weight of an nn.Linear or an embedding table: quantisable
  | 'conv' // patch embedding (C_v, channels, p, p): presented as a linear, kept f32
  | 'bias'
  | 'norm' // LayerNorm/RMSNorm gamma or LayerNorm beta
  | 'position'; // learned position table (P, C_v): added by index, kept f32

export interface WeightSpec {
  shape: Shape;
  role: TensorRole;
}

/** Every tensor the model needs, in model order, name -> shape. */
export function expectedWeightShapes(c: VlmConfig): Map<string, Shape> {
  return new Map([...expectedWeights(c)].map(([name, spec]) => [name, spec.shape]));
}

/** Like expectedWeightShapes, with each tensor's role. */
export function expectedWeights(c: VlmConfig): Map<string, WeightSpec> {
  const m = new Map<string, WeightSpec>();
  const add = (name: string, role: TensorRole, ...shape: number[]) => m.set(name, { shape, role });
  const Cv = c.vit_hidden_dim;
  const p = c.vit_patch_size;
  const side = vitPatchesPerSide(c);

  const ve = 'model.vision_model.embeddings';
  add(`${ve}.patch_embedding.weight`, 'conv', Cv, c.vit_num_channels, p, p); // (C_v, 3, p, p)
  add(`${ve}.patch_embedding.bias`, 'bias', Cv);
  add(`${ve}.position_embedding.weight`, 'position', side * side, Cv); // (P, C_v)
  for (let i = 0; i < c.vit_n_layers; i++) {
    const l = `model.vision_model.encoder.layers.${i}`;
    add(`${l}.layer_norm1.weight`, 'norm', Cv);
    add(`${l}.layer_norm1.bias`, 'norm', Cv);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${l}.self_attn.${proj}.weight`, 'linear', Cv, Cv);
      add(`${l}.self_attn.${proj}.bias`, 'bias', Cv);
    }
    add(`${l}.layer_norm2.weight`, 'norm', Cv);
    add(`${l}.layer_norm2.bias`, 'norm', Cv);
    add(`${l}.mlp.fc1.weight`, 'linear', c.vit_inter_dim, Cv); // (I_v, C_v)
    add(`${l}.mlp.fc1.bias`, 'bias', c.vit_inter_dim);
    add(`${l}.mlp.fc2.weight`, 'linear', Cv, c.vit_inter_dim); // (C_v, I_v)
    add(`${l}.mlp.fc2.bias`, 'bias', Cv);
  }
  add('model.vision_model.post_layernorm.weight', 'norm', Cv);
  add('model.vision_model.post_layernorm.bias', 'norm', Cv);

  const s2 = c.mp_pixel_shuffle_factor * c.mp_pixel_shuffle_factor;
  add('model.connector.modality_projection.proj.weight', 'linear', c.lm_hidden_dim, Cv * s2); // (C, C_v*s^2)

  const C = c.lm_hidden_dim;
  const HS = c.lm_head_dim;
  add('model.text_model.embed_tokens.weight', 'linear', c.lm_vocab_size, C); // (V, C)
  for (let i = 0; i < c.lm_n_layers; i++) {
    const l = `model.text_model.layers.${i}`;
    add(`${l}.input_layernorm.weight`, 'norm', C);
    add(`${l}.self_attn.q_proj.weight`, 'linear', c.lm_n_heads * HS, C); // (NH*HS, C)
    add(`${l}.self_attn.k_proj.weight`, 'linear', c.lm_n_kv_heads * HS, C); // (NKV*HS, C)
    add(`${l}.self_attn.v_proj.weight`, 'linear', c.lm_n_kv_heads * HS, C); // (NKV*HS, C)
    add(`${l}.self_attn.o_proj.weight`, 'linear', C, c.lm_n_heads * HS); // (C, NH*HS)
    add(`${l}.post_attention_layernorm.weight`, 'norm', C);
    add(`${l}.mlp.gate_proj.weight`, 'linear', c.lm_inter_dim, C); // (I, C)
    add(`${l}.mlp.up_proj.weight`, 'linear', c.lm_inter_dim, C); // (I, C)
    add(`${l}.mlp.down_proj.weight`, 'linear', C, c.lm_inter_dim); // (C, I)
  }
  add('model.text_model.norm.weight', 'norm', C);
  if (!c.lm_tie_embeddings) add('lm_head.weight', 'linear', c.lm_vocab_size, C); // (V, C)
  return m;
}

/**
 * Tensors a checkpoint may hold that the model does not use: non-persistent buffers some
 * exporters still save, and an lm_head copy next to tied embeddings.
 */
export function isIgnorableWeight(name: string, c: VlmConfig): boolean {
  if (/(^|\.)rotary_emb\.inv_freq$/.test(name)) return true;
  if (/(^|\.)position_ids$/.test(name)) return true;
  return c.lm_tie_embeddings && name === 'lm_head.weight';
}

/** Parameter count of the model (tied lm_head counted once). */
export function parameterCount(c: VlmConfig): number {
  let n = 0;
  for (const shape of expectedWeightShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}
