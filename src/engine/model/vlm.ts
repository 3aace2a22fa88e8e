// The whole Idefics3 vision-language model, written once against the Ops interface: stock tfjs
// ops and our WGSL kernels run this same code. Image tiles go through the vision encoder and
// connector; their features replace the embeddings of the `<image>` tokens in order (HF
// Idefics3Model.inputs_merger); the Llama decoder runs over the merged sequence.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/modeling_idefics3.py
//
// Built for training too: every trainable matmul goes through ops.linear (via ModelLinears,
// where adapters plug in), every activation is a tf.Tensor (tfjs autodiff sees the whole graph
// on the stock path), and forward() reads nothing back from the GPU. Bookkeeping that depends only on the token ids (image-token
// positions, RoPE positions, padding) is computed on the CPU from the Int32Array inputs.
//
// B batch, T tokens per row, S keys, C channels, N tiles, V vocab, L_img = image_seq_len.
import * as tf from '@tensorflow/tfjs';
import { imageSeqLen, type VlmConfig } from '../config';
import type { Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';
import { Connector } from './connector';
import { KvCache } from './kv_cache';
import { ModelLinears, type LinearAdapters } from './linears';
import { TextDecoder } from './text_decoder';
import { VisionEncoder } from './vision_encoder';

export interface ForwardInputs {
  /** (B*T) token ids, row-major; image placeholders already expanded to L_img tokens per tile. */
  inputIds: Int32Array;
  /** B, rows in inputIds; default 1. */
  batch?: number;
  /** (B*T) 1 = real token, 0 = padding (left or right); omitted = all real. */
  attentionMask?: Int32Array;
  /** (N, 3, H, W) normalised pixels, tiles in the order their image tokens appear (rows in order). */
  pixelValues?: Float32Array;
  nTiles?: number;
}

export interface ForwardOptions {
  /** Decode with a KV cache: the new tokens' K/V are appended, positions continue. */
  cache?: KvCache;
  /** 'all': (B*T, V); 'last': (B, V), each row's last real token (what generation needs). */
  logits: 'all' | 'last';
}

export interface ForwardOutput {
  /** (B*T, V) or (B, V), float32. The caller disposes it. */
  logits: tf.Tensor2D;
}

export class Idefics3Model {
  readonly config: VlmConfig;
  readonly vision: VisionEncoder;
  readonly connector: Connector;
  readonly decoder: TextDecoder;

  /** The door every linear layer goes through (adapters plug in here). */
  private readonly linears: ModelLinears;

  constructor(
    readonly weights: ModelWeights,
    readonly ops: Ops,
    opts: { adapters?: LinearAdapters | null } = {},
  ) {
    this.config = weights.config;
    this.linears = new ModelLinears(weights, ops);
    this.linears.adapters = opts.adapters ?? null;
    this.vision = new VisionEncoder(weights, ops, this.linears);
    this.connector = new Connector(weights, ops, this.linears);
    this.decoder = new TextDecoder(weights, ops, this.linears);
  }

  /** Attached adapters (LoRA etc.); null = the frozen base model. Swappable between calls. */
  get adapters(): LinearAdapters | null {
    return this.linears.adapters;
  }

  set adapters(a: LinearAdapters | null) {
    this.linears.adapters = a;
  }

  /** An empty KV cache for `batch` rows; the caller disposes it. */
  newCache(batch = 1): KvCache {
    return new KvCache(this.config.lm_n_layers, batch);
  }

  forward(inputs: ForwardInputs, opts: ForwardOptions): ForwardOutput {
    return { logits: this.run(inputs, opts.cache, opts.logits) };
  }

  /**
   * (B*T, C) final-normed hidden states of every position, without the lm_head: the training
   * loss applies the lm_head itself, a chunk of rows at a time (train/loss.ts).
   */
  hiddenStates(inputs: ForwardInputs): tf.Tensor2D {
    return this.run(inputs, undefined, 'hidden');
  }

  /** forward() and hiddenStates(): 'all' / 'last' logits, or the hidden states before lm_head. */
  private run(inputs: ForwardInputs, cache: KvCache | undefined, out: 'all' | 'last' | 'hidden'): tf.Tensor2D {
    const c = this.config;
    const B = inputs.batch ?? 1;
    const ids = inputs.inputIds;
    if (ids.length === 0 || ids.length % B !== 0) {
      throw new Error(`Idefics3Model.forward: inputIds has ${ids.length} tokens, not a positive multiple of batch ${B}`);
    }
    const T = ids.length / B;
    const mask = inputs.attentionMask;
    if (mask && mask.length !== ids.length) {
      throw new Error(`Idefics3Model.forward: attentionMask has ${mask.length} entries, inputIds ${ids.length}`);
    }
    if (cache && cache.batch !== B) {
      throw new Error(`Idefics3Model.forward: cache holds ${cache.batch} rows, inputs ${B}`);
    }
    const merge = this.imageMergeIndex(inputs);

    // CPU bookkeeping: RoPE positions (B, T) and key mask (B, S)
    const book = cache ? cache.reserve(T, mask) : bookWithoutCache(B, T, mask);
    const lastRows = out === 'last' ? lastRealRows(B, T, mask) : null;

    return tf.tidy(() => {
      const idT = tf.tensor1d(ids, 'int32'); // (B*T)
      let x = this.decoder.embed(idT); // (B*T, C)
      if (merge) {
        const feats = this.imageFeatures(inputs.pixelValues!, merge.nTiles); // (N*L_img, C)
        // rows 0..B*T-1 are text embeddings, B*T.. the image features; one gather puts each
        // image feature at its <image> token, in order, and stays differentiable for both
        const pool = tf.concat([x, feats], 0); // (B*T + N*L_img, C)
        x = tf.gather(pool, tf.tensor1d(merge.index, 'int32')) as tf.Tensor2D; // (B*T, C)
      }
      const positions = tf.tensor2d(book.positions, [B, T], 'int32'); // (B, T)
      const S = book.keyMask.length / B;
      const keyMask = book.allReal ? undefined : (tf.tensor2d(Float32Array.from(book.keyMask), [B, S]) as tf.Tensor2D); // (B, S)
      const h = this.decoder.forward(x, { B, T, positions, keyMask, cache: cache }); // (B*T, C)
      if (out === 'hidden') return h;
      const hOut = lastRows ? (tf.gather(h, tf.tensor1d(lastRows, 'int32')) as tf.Tensor2D) : h; // (B, C) or (B*T, C)
      return this.decoder.logits(hOut); // (B or B*T, V)
    });
  }

  /** pixels -> connector features (N*L_img, C), in tile order. */
  imageFeatures(pixelValues: Float32Array, nTiles: number): tf.Tensor2D {
    const c = this.config;
    const H = c.vit_img_size;
    return tf.tidy(() => {
      const px = tf.tensor4d(pixelValues, [nTiles, c.vit_num_channels, H, H]); // (N, 3, H, W)
      const f = this.connector.forward(this.vision.forward(px)); // (N, L_img, C)
      return f.reshape([nTiles * imageSeqLen(c), c.lm_hidden_dim]) as tf.Tensor2D; // (N*L_img, C)
    });
  }

  /**
   * Where the image features go: index[i] = i for text tokens, B*T + k for the k-th image
   * token. Null when the inputs carry no image tokens and no tiles. Throws when the counts
   * disagree, naming both.
   */
  private imageMergeIndex(inputs: ForwardInputs): { index: Int32Array; nTiles: number } | null {
    const c = this.config;
    const ids = inputs.inputIds;
    const nTiles = inputs.nTiles ?? 0;
    const perTile = imageSeqLen(c);
    let nImg = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] === c.image_token_id) nImg++;
    if (nImg !== nTiles * perTile) {
      throw new Error(
        `Idefics3Model.forward: inputIds hold ${nImg} <image> tokens (id ${c.image_token_id}) but nTiles = ${nTiles} ` +
          `gives ${nTiles} x ${perTile} = ${nTiles * perTile} image features; the prompt's image placeholders and the pixel tiles do not match`,
      );
    }
    if (nTiles === 0) return null;
    const tileLen = c.vit_num_channels * c.vit_img_size * c.vit_img_size;
    const px = inputs.pixelValues;
    if (!px || px.length !== nTiles * tileLen) {
      throw new Error(
        `Idefics3Model.forward: pixelValues has ${px ? px.length : 0} floats, expected nTiles x 3 x H x W = ${nTiles} x ${tileLen} = ${nTiles * tileLen}`,
      );
    }
    const index = new Int32Array(ids.length);
    let k = ids.length;
    for (let i = 0; i < ids.length; i++) index[i] = ids[i] === c.image_token_id ? k++ : i;
    return { index, nTiles };
  }
}

/** Positions and key mask for a pass without cache: positions count real tokens per row. */
function bookWithoutCache(B: number, T: number, mask?: Int32Array): { positions: Int32Array; keyMask: Uint8Array; allReal: boolean } {
  const positions = new Int32Array(B * T); // (B, T)
  const keyMask = new Uint8Array(B * T).fill(1); // (B, S = T)
  let allReal = true;
  for (let b = 0; b < B; b++) {
    let p = 0;
    for (let t = 0; t < T; t++) {
      const real = mask ? mask[b * T + t] !== 0 : true;
      positions[b * T + t] = real ? p++ : 0;
      if (!real) {
        keyMask[b * T + t] = 0;
        allReal = false;
      }
    }
  }
  return { positions, keyMask, allReal };
}

/** (B) flat row index of each batch row's last real token. */
function lastRealRows(B: number, T: number, mask?: Int32Array): Int32Array {
  const rows = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let last = T - 1;
    if (mask) while (last > 0 && mask[b * T + last] === 0) last--;
    rows[b] = b * T + last;
  }
  return rows;
}
