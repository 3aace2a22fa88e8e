// The Ops interface on our WGSL kernels: a thin map from each op to its kernel function in
// kernels/*.ts (which pick the kernel variant by shape). The kernels' CPU twins live in cpu/*.ts.
// Ops whose kernels are not wired in yet fall back to the stock implementation, marked TODO.
import type { Ops } from './ops';
import { createStockOps } from './stock_ops';
import { linearKernel } from '../kernels/linear';
import { embeddingKernel } from '../kernels/embedding';
import { layerNormForward } from '../kernels/layer_norm';
import { rmsNormForward } from '../kernels/rms_norm';
import { ropeForward } from '../kernels/rope';
import { attentionForward } from '../kernels/attention';
import { geluTanhForward, siluMulForward } from '../kernels/activations';
import { pixelShuffleForward } from '../kernels/pixel_shuffle';

export function createCustomOps(): Ops {
  const stock = createStockOps();
  return {
    name: 'custom',
    linear: (x, w) => linearKernel(x, w),
    embedding: (ids, table) => embeddingKernel(ids, table),
    layerNorm: (x, gamma, beta, eps) => layerNormForward(x, gamma, beta, eps),
    rmsNorm: (x, gamma, eps) => rmsNormForward(x, gamma, eps),
    rope: (x, positions, nHeads, headDim, theta) => ropeForward(x, positions, nHeads, headDim, theta),
    attention: (q, k, v, opts) => attentionForward(q, k, v, opts),
    geluTanh: (x) => geluTanhForward(x),
    siluMul: (gate, up) => siluMulForward(gate, up),
    pixelShuffle: (x, factor) => pixelShuffleForward(x, factor),
  };
}
