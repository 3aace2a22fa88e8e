// SigLIP vision encoder as Idefics3 uses it (transformers Idefics3VisionTransformer):
// patch embedding (a stride-p conv, computed here as im2col + one linear), learned position
// embeddings, L pre-LayerNorm transformer blocks with full (non-causal) attention, and a final
// post_layernorm. Every tile is a full vit_img_size square (the Idefics3 processor resizes and
// splits images so), so the patch attention mask is all ones and the position ids are simply
// 0..P-1: HF's bucketize of fractional coordinates reduces to that for full tiles.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/modeling_idefics3.py
//
// N tiles, H = W = vit_img_size, p patch size, PS = H/p patches per side, P = PS^2 patches,
// C_v = vit_hidden_dim, I_v = vit_inter_dim, NH_v heads, HS_v = C_v/NH_v.
import * as tf from '@tensorflow/tfjs';
import { vitPatchesPerSide, type VlmConfig } from '../config';
import type { Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';
import { ModelLinears } from './linears';

const PREFIX = 'model.vision_model';

export class VisionEncoder {
  private readonly c: VlmConfig;

  constructor(
    private readonly weights: ModelWeights,
    private readonly ops: Ops,
    private readonly linears: ModelLinears = new ModelLinears(weights, ops),
  ) {
    this.c = weights.config;
  }

  /** Patches per tile (P). */
  get nPatches(): number {
    const ps = vitPatchesPerSide(this.c);
    return ps * ps;
  }

  /** pixels (N, 3, H, W) -> (N, P, C_v). */
  forward(pixels: tf.Tensor4D): tf.Tensor3D {
    const c = this.c;
    const [N] = pixels.shape;
    const P = this.nPatches;
    const Cv = c.vit_hidden_dim;
    return tf.tidy(() => {
      // full tiles use position ids 0..P-1: the whole (P, C_v) table, broadcast over tiles
      const pos = this.weights.tensor(`${PREFIX}.embeddings.position_embedding.weight`); // (P, C_v)
      let x = this.patchEmbeddings(pixels).add(pos).reshape([N * P, Cv]) as tf.Tensor2D; // (N*P, C_v)
      // one tidy per block: a block's intermediates (~70 MB at 1024 patches x 768) are freed
      // before the next block runs instead of piling up until the whole encoder returns
      for (let l = 0; l < c.vit_n_layers; l++) {
        const prev = x;
        x = tf.tidy(() => this.block(prev, l, N, P));
        prev.dispose();
      }
      const post = this.ops.layerNorm(x, this.vec(`${PREFIX}.post_layernorm.weight`), this.vec(`${PREFIX}.post_layernorm.bias`), c.vit_ln_eps);
      return post.reshape([N, P, Cv]) as tf.Tensor3D; // (N, P, C_v)
    });
  }

  /**
   * The patch-embedding conv (kernel = stride = p, with bias) as im2col + ops.linear, so it
   * shares the quantisable, trainable linear path: pixels (N, 3, H, W) -> (N, P, C_v).
   */
  patchEmbeddings(pixels: tf.Tensor4D): tf.Tensor3D {
    const c = this.c;
    const [N, ch, H, W] = pixels.shape;
    if (ch !== c.vit_num_channels || H !== c.vit_img_size || W !== c.vit_img_size) {
      throw new Error(
        `VisionEncoder: pixel tiles have shape (${N}, ${ch}, ${H}, ${W}), expected (N, ${c.vit_num_channels}, ${c.vit_img_size}, ${c.vit_img_size})`,
      );
    }
    const p = c.vit_patch_size;
    const PS = vitPatchesPerSide(c);
    const P = PS * PS;
    return tf.tidy(() => {
      // im2col in the conv weight's (c, ky, kx) order, patches row-major like conv.flatten(2)
      const cols = pixels
        .reshape([N, ch, PS, p, PS, p]) // (N, 3, PSy, ky, PSx, kx)
        .transpose([0, 2, 4, 1, 3, 5]) // (N, PSy, PSx, 3, ky, kx)
        .reshape([N * P, ch * p * p]) as tf.Tensor2D; // (N*P, 3*p*p)
      const patches = this.linears.run(cols, `${PREFIX}.embeddings.patch_embedding`); // (N*P, C_v)
      return patches.reshape([N, P, c.vit_hidden_dim]) as tf.Tensor3D; // (N, P, C_v)
    });
  }

  /** One pre-LN encoder layer: x + attn(LN1(x)), then x + fc2(gelu(fc1(LN2(x)))). x (N*P, C_v). */
  block(x: tf.Tensor2D, l: number, N: number, P: number): tf.Tensor2D {
    const c = this.c;
    const ops = this.ops;
    const pre = `${PREFIX}.encoder.layers.${l}`;
    const Cv = c.vit_hidden_dim;
    const HS = Cv / c.vit_n_heads;

    const h1 = ops.layerNorm(x, this.vec(`${pre}.layer_norm1.weight`), this.vec(`${pre}.layer_norm1.bias`), c.vit_ln_eps); // (N*P, C_v)
    const q = this.linears.run(h1, `${pre}.self_attn.q_proj`).reshape([N, P, Cv]) as tf.Tensor3D; // (N, P, NH_v*HS_v)
    const k = this.linears.run(h1, `${pre}.self_attn.k_proj`).reshape([N, P, Cv]) as tf.Tensor3D;
    const v = this.linears.run(h1, `${pre}.self_attn.v_proj`).reshape([N, P, Cv]) as tf.Tensor3D;
    const att = ops.attention(q, k, v, {
      causal: false,
      nHeads: c.vit_n_heads,
      nKvHeads: c.vit_n_heads,
      headDim: HS,
      scale: 1 / Math.sqrt(HS),
    }); // (N, P, C_v)
    const o = this.linears.run(att.reshape([N * P, Cv]) as tf.Tensor2D, `${pre}.self_attn.out_proj`); // (N*P, C_v)
    const x1 = x.add(o) as tf.Tensor2D;

    const h2 = ops.layerNorm(x1, this.vec(`${pre}.layer_norm2.weight`), this.vec(`${pre}.layer_norm2.bias`), c.vit_ln_eps);
    const f1 = ops.geluTanh(this.linears.run(h2, `${pre}.mlp.fc1`)); // (N*P, I_v)
    const f2 = this.linears.run(f1, `${pre}.mlp.fc2`); // (N*P, C_v)
    return x1.add(f2) as tf.Tensor2D;
  }

  private vec(name: string): tf.Tensor1D {
    return this.weights.tensor(name) as tf.Tensor1D;
  }
}
