// The Ops interface in plain tfjs ops: the readable reference the custom kernels are compared
// with, and the baseline the benchmark measures them against. Everything here stays inside
// tfjs autodiff (gradients flow to x and to f32 weights).
//
// One exception, forced by tfjs-backend-webgpu 4.22: every stock kernel reads int32 tensors
// through f32 (`getA()` returns f32), so gather/slice/floorDiv/mod on packed q8/q4 words round
// any word beyond 2^24 and corrupt its bytes (checked: gather of 0x7f00ff01 returns
// 0x7f00ff00). There is also no BitwiseAnd kernel for webgpu. The stock path therefore unpacks
// quantised weights with our exact gather program (kernels/embedding.ts, the decoders in
// shaders/linear_w_*.wgsl) into a temporary f32 matrix per call, and does the rest with stock
// ops: it is the "dequantise, then stock matmul" baseline, and materialises the f32 weights
// that the custom kernels never do.
//
// B batch, T queries, S keys, C channels, NH heads, NKV kv heads, HS head size, P patches.
import * as tf from '@tensorflow/tfjs';
import type { AttentionOptions, EmbeddingWeight, LinearWeight, Ops } from './ops';
import { embeddingKernel } from '../kernels/embedding';
import { ropeInvFreq } from '../cpu/rope';

/** A quantised weight as a fresh f32 (outF, inF) tensor; f32 weights are returned as they are. */
export function dequantizeLinear(w: LinearWeight): tf.Tensor2D {
  if (w.kind === 'f32') return w.w;
  // Every row, in order: the exact unpack (see the header for why not tfjs ops).
  const rows = tf.range(0, w.outF, 1, 'int32') as tf.Tensor1D; // (outF)
  const f = embeddingKernel(rows, w); // (outF, inF)
  rows.dispose();
  return f;
}

function linear(x: tf.Tensor2D, w: LinearWeight): tf.Tensor2D {
  return tf.tidy((): tf.Tensor2D => {
    const wf = dequantizeLinear(w); // (outF, inF)
    const y: tf.Tensor2D = tf.matMul(x, wf, false, true); // (N, outF)
    return w.bias ? tf.add(y, w.bias) : y;
  });
}

function embedding(ids: tf.Tensor1D, table: EmbeddingWeight): tf.Tensor2D {
  if (table.kind === 'f32') return tf.gather(table.w, ids); // (N, C)
  // Gathering packed rows with tf.gather would round them (header): decode the gathered rows.
  return embeddingKernel(ids, table);
}

function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // (N, 1) each, biased variance
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor2D;
  });
}

function rmsNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // (N, 1)
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gamma) as tf.Tensor2D;
  });
}

// HF Llama rotate_half convention: channel i pairs with i + HS/2 of the same head.
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py
function rope(x: tf.Tensor3D, positions: tf.Tensor2D, nHeads: number, headDim: number, theta: number): tf.Tensor3D {
  const [B, T, width] = x.shape;
  if (width !== nHeads * headDim) {
    throw new Error(`stock_ops rope: x has ${width} channels, expected nHeads*headDim = ${nHeads}*${headDim}`);
  }
  const half = headDim / 2;
  return tf.tidy(() => {
    const inv = tf.tensor1d(ropeInvFreq(headDim, theta)); // (HS/2), the same f32 table as transformers
    const pos = tf.cast(positions, 'float32').reshape([B, T, 1]); // (B, T, 1)
    const freqs = tf.mul(pos, inv); // (B, T, HS/2): f32 angle, as transformers computes it
    const emb = tf.concat([freqs, freqs], -1).reshape([B, T, 1, headDim]); // (B, T, 1, HS)
    const xh = x.reshape([B, T, nHeads, headDim]); // (B, T, C) -> (B, T, NH, HS)
    const x1 = xh.slice([0, 0, 0, 0], [B, T, nHeads, half]); // (B, T, NH, HS/2)
    const x2 = xh.slice([0, 0, 0, half], [B, T, nHeads, half]);
    const rotated = tf.concat([tf.neg(x2), x1], -1); // rotate_half(x)
    const out = tf.add(tf.mul(xh, tf.cos(emb)), tf.mul(rotated, tf.sin(emb)));
    return out.reshape([B, T, width]) as tf.Tensor3D;
  });
}

function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: AttentionOptions): tf.Tensor3D {
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, scale, causal, keyMask } = opts;
  const [B, T] = q.shape;
  const S = k.shape[1];
  if (NH % NKV !== 0) throw new Error(`stock_ops attention: nHeads=${NH} is not a multiple of nKvHeads=${NKV}`);
  const G = NH / NKV;
  return tf.tidy(() => {
    const qh = q.reshape([B, T, NH, HS]).transpose([0, 2, 1, 3]); // (B, NH, T, HS)
    // Repeat each kv head G times, consecutively (query head h reads kv head floor(h / G)).
    // Kept at rank 4: tfjs-webgpu runs a rank-5 tile on the CPU through readSync, which
    // loses the device when the input lives on the GPU (any K/V computed by the model).
    const repeatKv = (t: tf.Tensor3D) =>
      t
        .reshape([B, S, NKV, HS])
        .transpose([0, 2, 1, 3]) // (B, NKV, S, HS)
        .reshape([B, NKV, 1, S * HS])
        .tile([1, 1, G, 1]) // (B, NKV, G, S*HS)
        .reshape([B, NH, S, HS]); // (B, NH, S, HS)
    const kh = repeatKv(k);
    const vh = repeatKv(v);
    const scores = tf.mul(tf.matMul(qh, kh, false, true), scale); // (B, NH, T, S)
    // visible (B or 1, 1, T or 1, S): causal (query t at absolute S - T + t sees keys <= it)
    // and key mask.
    let visible: tf.Tensor = tf.ones([1, 1, 1, S]);
    if (causal) {
      const j = tf.range(0, S, 1, 'int32').reshape([1, S]); // (1, S)
      const last = tf.range(S - T, S, 1, 'int32').reshape([T, 1]); // (T, 1)
      visible = tf.cast(tf.lessEqual(j, last), 'float32').reshape([1, 1, T, S]);
    }
    if (keyMask) visible = tf.mul(visible, tf.cast(tf.greaterEqual(keyMask, 0.5), 'float32').reshape([B, 1, 1, S]));
    // Softmax over visible keys only; a row with none gives zeros (padding), not NaN.
    const masked = tf.where(tf.greater(visible, 0.5), scores, tf.fill(scores.shape, -1e30)); // (B, NH, T, S)
    const m = tf.max(masked, -1, true); // (B, NH, T, 1)
    const p = tf.mul(tf.exp(tf.sub(masked, m)), visible);
    const l = tf.sum(p, -1, true);
    // Divide by 1 where a row sees no key (p and l are 0 there): a clamp like max(l, 1e-30) would
    // make the gradient -p/l^2 evaluate 0/0 = NaN once l^2 underflows. `visible` depends on no
    // input, so this stays differentiable (tfjs has no gradient for comparisons).
    const blind = tf.sub(1, tf.max(visible, -1, true)); // (B or 1, 1, T or 1, 1): 1 where no key is visible
    const probs = tf.div(p, tf.add(l, blind));
    const out = tf.matMul(probs, vh); // (B, NH, T, HS)
    return out.transpose([0, 2, 1, 3]).reshape([B, T, NH * HS]) as tf.Tensor3D; // (B, T, NH*HS)
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function geluTanh(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as tf.Tensor2D;
  });
}

function siluMul(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D);
}

// transformers Idefics3Connector.pixel_shuffle, step by step:
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/modeling_idefics3.py
function pixelShuffle(x: tf.Tensor3D, factor: number): tf.Tensor3D {
  const [B, P, C] = x.shape;
  const side = Math.round(Math.sqrt(P));
  if (side * side !== P) throw new Error(`stock_ops pixelShuffle: P=${P} patches is not a square number`);
  if (side % factor !== 0) throw new Error(`stock_ops pixelShuffle: side ${side} is not divisible by factor ${factor}`);
  const s = factor;
  return tf.tidy(() => {
    let t: tf.Tensor = x.reshape([B, side, side / s, C * s]); // (B, H, W, C) viewed as (B, H, W/s, C*s)
    t = t.transpose([0, 2, 1, 3]); // (B, W/s, H, C*s)
    t = t.reshape([B, side / s, side / s, C * s * s]); // (B, W/s, H/s, C*s^2)
    t = t.transpose([0, 2, 1, 3]); // (B, H/s, W/s, C*s^2)
    return t.reshape([B, P / (s * s), C * s * s]) as tf.Tensor3D; // (B, P/s^2, C*s^2)
  });
}

export function createStockOps(): Ops {
  return { name: 'stock', linear, embedding, layerNorm, rmsNorm, rope, attention, geluTanh, siluMul, pixelShuffle };
}
