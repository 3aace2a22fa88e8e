// The Ops interface on our WGSL kernels: a thin map from each op to its kernel function in
// kernels/*.ts (which pick the kernel variant by shape). The kernels' CPU twins live in cpu/*.ts.
// All ops but attention go through ops/custom_grad.ts, which registers each kernel with its
// backward so tfjs autodiff differentiates them.
// Ops whose kernels are not wired in yet fall back to the stock implementation, marked TODO.
import type { Ops } from './ops';
import { createStockOps } from './stock_ops';
import { embeddingOp, geluTanhOp, layerNormOp, linearOp, pixelShuffleOp, rmsNormOp, ropeOp, siluMulOp } from './custom_grad';
import { attentionWithGrad } from '../kernels/attention';

export function createCustomOps(): Ops {
  const stock = createStockOps();
  return {
    name: 'custom',
    linear: (x, w) => linearOp(x, w),
    embedding: (ids, table) => embeddingOp(ids, table),
    layerNorm: (x, gamma, beta, eps) => layerNormOp(x, gamma, beta, eps),
    rmsNorm: (x, gamma, eps) => rmsNormOp(x, gamma, eps),
    rope: (x, positions, nHeads, headDim, theta) => ropeOp(x, positions, nHeads, headDim, theta),
    attention: (q, k, v, opts) => attentionWithGrad(q, k, v, opts),
    geluTanh: (x) => geluTanhOp(x),
    siluMul: (gate, up) => siluMulOp(gate, up),
    pixelShuffle: (x, factor) => pixelShuffleOp(x, factor),
  };
}
