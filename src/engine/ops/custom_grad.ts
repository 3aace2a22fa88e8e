// Gradients for our WGSL kernels: each custom op runs as a tfjs kernel of its own, registered
// with tf.registerKernel for the 'webgpu' backend, and its backward with tf.registerGradient,
// so tf.grads / tf.variableGrads / optimizer.minimize differentiate a model built with
// createCustomOps() exactly as they do the stock ops.
//
// Why registerKernel + registerGradient rather than tf.customGrad: a customGrad function must
// compute the gradient of EVERY input it was given as soon as backprop reaches it, while a
// registered gradient returns one closure per input and tfjs calls only those on the path to
// the requested variables. That matters here: a frozen f32 base weight (the tiny test model,
// an f32-loaded checkpoint) would otherwise cost a dW matmul per linear per step, and a frozen
// norm's dgamma a reduction, for gradients nobody asked for. Asking for a gradient an op does
// not have (the packed words of a quantised weight, ids, positions) fails with tfjs's own
// "Cannot backprop through input <name>" error.
//
// What each op saves for backward (tfjs keeps a clone, i.e. a reference, of these until the
// backward pass ends): linear f32 x and W (quantised: q and scale only, no dW); embedding ids;
// layerNorm / rmsNorm x and gamma (row statistics are recomputed, see kernels/layer_norm.ts);
// rope positions; geluTanh x; siluMul gate and up; pixelShuffle nothing.
//
// Attention's gradient is wired separately (kernels/attention.ts, its own helper).
//
// N rows, C channels, B batch, T tokens, P patches.
import * as tf from '@tensorflow/tfjs';
import type { EmbeddingWeight, LinearWeight } from './ops';
import {
  linearBackwardBias,
  linearBackwardInput,
  linearBackwardWeight,
  linearKernel,
} from '../kernels/linear';
import { embeddingBackward, embeddingKernel } from '../kernels/embedding';
import { layerNormBackward, layerNormBackwardGamma, layerNormForward } from '../kernels/layer_norm';
import { rmsNormBackward, rmsNormBackwardGamma, rmsNormForward } from '../kernels/rms_norm';
import { ropeBackward, ropeForward } from '../kernels/rope';
import { geluTanhBackward, geluTanhForward, siluMulBackward, siluMulForward } from '../kernels/activations';
import { pixelShuffleBackward, pixelShuffleForward } from '../kernels/pixel_shuffle';
import { columnSum } from '../kernels/linear';

const BACKEND = 'webgpu';

/** Kernel names, prefixed so they cannot collide with tfjs's own. */
export const KERNEL = {
  linearF32: 'VlmLinearF32',
  linearQ8: 'VlmLinearQ8',
  linearQ4: 'VlmLinearQ4',
  embeddingF32: 'VlmEmbeddingF32',
  embeddingQ8: 'VlmEmbeddingQ8',
  embeddingQ4: 'VlmEmbeddingQ4',
  layerNorm: 'VlmLayerNorm',
  rmsNorm: 'VlmRmsNorm',
  rope: 'VlmRope',
  geluTanh: 'VlmGeluTanh',
  siluMul: 'VlmSiluMul',
  pixelShuffle: 'VlmPixelShuffle',
} as const;

type Inputs = Record<string, tf.Tensor>;
type Attrs = tf.NamedAttrMap;

/**
 * tfjs hands kernels TensorInfos in its types; in this engine they are always the tf.Tensors
 * passed to runKernel (engine.runKernel forwards its NamedTensorMap unchanged).
 */
function tensorsOf(inputs: tf.NamedTensorInfoMap): Inputs {
  return inputs as unknown as Inputs;
}

function num(attrs: Attrs | undefined, name: string): number {
  const v = attrs?.[name];
  if (typeof v !== 'number') throw new Error(`ops/custom_grad.ts: kernel attribute '${name}' is missing`);
  return v;
}

/** Registers a kernel and its gradient once per process (tfjs's registries are global). */
function register(
  kernelName: string,
  forward: (inputs: Inputs, attrs: Attrs) => tf.Tensor,
  inputsToSave: string[],
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[], attrs: Attrs) => Record<string, () => tf.Tensor>,
): void {
  if (!tf.getKernel(kernelName, BACKEND)) {
    tf.registerKernel({
      kernelName,
      backendName: BACKEND,
      // The tensor we return already tracks its buffer; tfjs uses a returned tensor as it is.
      kernelFunc: ({ inputs, attrs }) => forward(tensorsOf(inputs), attrs ?? {}),
    });
  }
  if (!tf.getGradient(kernelName)) {
    tf.registerGradient({
      kernelName,
      inputsToSave,
      gradFunc: (dy, saved, attrs) => gradFunc(dy as tf.Tensor, saved, attrs),
    });
  }
}

function registerAll(): void {
  // Linear. f32: gradients to x, w, bias. Quantised: to x and bias; the packed words are frozen.
  register(
    KERNEL.linearF32,
    ({ x, w, bias }) => {
      const [outF, inF] = w.shape;
      return linearKernel(x as tf.Tensor2D, { kind: 'f32', inF, outF, w: w as tf.Tensor2D, bias: bias as tf.Tensor1D | undefined });
    },
    ['x', 'w'],
    (dy, [x, w]) => {
      const [outF, inF] = w.shape;
      const weight: LinearWeight = { kind: 'f32', inF, outF, w: w as tf.Tensor2D };
      return {
        x: () => linearBackwardInput(dy as tf.Tensor2D, weight), // (N, inF)
        w: () => linearBackwardWeight(dy as tf.Tensor2D, x as tf.Tensor2D), // (outF, inF)
        bias: () => linearBackwardBias(dy as tf.Tensor2D), // (outF)
      };
    },
  );
  const quantised = (kind: 'q8' | 'q4', q: tf.Tensor, scale: tf.Tensor, attrs: Attrs, bias?: tf.Tensor): LinearWeight =>
    kind === 'q8'
      ? { kind, inF: num(attrs, 'inF'), outF: q.shape[0], q: q as tf.Tensor2D, scale: scale as tf.Tensor1D, bias: bias as tf.Tensor1D | undefined }
      : {
          kind, inF: num(attrs, 'inF'), outF: q.shape[0], groupSize: num(attrs, 'groupSize'),
          q: q as tf.Tensor2D, scale: scale as tf.Tensor2D, bias: bias as tf.Tensor1D | undefined,
        };
  for (const kind of ['q8', 'q4'] as const) {
    register(
      kind === 'q8' ? KERNEL.linearQ8 : KERNEL.linearQ4,
      ({ x, q, scale, bias }, attrs) => linearKernel(x as tf.Tensor2D, quantised(kind, q, scale, attrs, bias)),
      ['q', 'scale'],
      (dy, [q, scale], attrs) => ({
        x: () => linearBackwardInput(dy as tf.Tensor2D, quantised(kind, q, scale, attrs)),
        bias: () => linearBackwardBias(dy as tf.Tensor2D),
      }),
    );
  }

  // Embedding: an f32 table gets dTable (a deterministic row loop, kernels/embedding.ts);
  // quantised tables and ids have no gradient.
  register(
    KERNEL.embeddingF32,
    ({ ids, w }) => {
      const table = w as tf.Tensor2D; // (V, C)
      return embeddingKernel(ids as tf.Tensor1D, { kind: 'f32', inF: table.shape[1], outF: table.shape[0], w: table });
    },
    ['ids'],
    (dy, [ids], attrs) => ({ w: () => embeddingBackward(dy as tf.Tensor2D, ids as tf.Tensor1D, num(attrs, 'vocab')) }),
  );
  for (const kind of ['q8', 'q4'] as const) {
    register(
      kind === 'q8' ? KERNEL.embeddingQ8 : KERNEL.embeddingQ4,
      ({ ids, q, scale }, attrs) => embeddingKernel(ids as tf.Tensor1D, quantised(kind, q, scale, attrs)),
      [],
      () => ({}),
    );
  }

  register(
    KERNEL.layerNorm,
    ({ x, gamma, beta }, attrs) => layerNormForward(x as tf.Tensor2D, gamma as tf.Tensor1D, beta as tf.Tensor1D, num(attrs, 'eps')),
    ['x', 'gamma'],
    (dy, [x, gamma], attrs) => ({
      x: () => layerNormBackward(dy as tf.Tensor2D, x as tf.Tensor2D, gamma as tf.Tensor1D, num(attrs, 'eps')),
      gamma: () => layerNormBackwardGamma(dy as tf.Tensor2D, x as tf.Tensor2D, num(attrs, 'eps')),
      beta: () => columnSum(dy as tf.Tensor2D),
    }),
  );

  register(
    KERNEL.rmsNorm,
    ({ x, gamma }, attrs) => rmsNormForward(x as tf.Tensor2D, gamma as tf.Tensor1D, num(attrs, 'eps')),
    ['x', 'gamma'],
    (dy, [x, gamma], attrs) => ({
      x: () => rmsNormBackward(dy as tf.Tensor2D, x as tf.Tensor2D, gamma as tf.Tensor1D, num(attrs, 'eps')),
      gamma: () => rmsNormBackwardGamma(dy as tf.Tensor2D, x as tf.Tensor2D, num(attrs, 'eps')),
    }),
  );

  register(
    KERNEL.rope,
    ({ x, positions }, attrs) =>
      ropeForward(x as tf.Tensor3D, positions as tf.Tensor2D, num(attrs, 'nHeads'), num(attrs, 'headDim'), num(attrs, 'theta')),
    ['positions'],
    (dy, [positions], attrs) => ({
      x: () => ropeBackward(dy as tf.Tensor3D, positions as tf.Tensor2D, num(attrs, 'nHeads'), num(attrs, 'headDim'), num(attrs, 'theta')),
    }),
  );

  register(
    KERNEL.geluTanh,
    ({ x }) => geluTanhForward(x as tf.Tensor2D),
    ['x'],
    (dy, [x]) => ({ x: () => geluTanhBackward(dy as tf.Tensor2D, x as tf.Tensor2D) }),
  );

  register(
    KERNEL.siluMul,
    ({ gate, up }) => siluMulForward(gate as tf.Tensor2D, up as tf.Tensor2D),
    ['gate', 'up'],
    (dy, [gate, up]) => ({
      gate: () => siluMulBackward('gate', dy as tf.Tensor2D, gate as tf.Tensor2D, up as tf.Tensor2D),
      up: () => siluMulBackward('up', dy as tf.Tensor2D, gate as tf.Tensor2D, up as tf.Tensor2D),
    }),
  );

  register(
    KERNEL.pixelShuffle,
    ({ x }, attrs) => pixelShuffleForward(x as tf.Tensor3D, num(attrs, 'factor')),
    [],
    (dy, _saved, attrs) => ({ x: () => pixelShuffleBackward(dy as tf.Tensor3D, num(attrs, 'factor'), num(attrs, 'patches')) }),
  );
}

/** Registers every kernel above (idempotent; cheap after the first call). */
export function registerCustomGradKernels(): void {
  if (!tf.getKernel(KERNEL.pixelShuffle, BACKEND) || !tf.getGradient(KERNEL.pixelShuffle)) registerAll();
}

function run<T extends tf.Tensor>(kernelName: string, inputs: Inputs, attrs: Attrs = {}): T {
  registerCustomGradKernels();
  return tf.engine().runKernel(kernelName, inputs, attrs) as T;
}

// ---------------------------------------------------------------------------------------------
// The differentiable ops (signatures of ops.ts's Ops).

/** x (N, inF) -> (N, outF). Gradients: x always; w and bias for an f32 weight; bias only for q8/q4. */
export function linearOp(x: tf.Tensor2D, w: LinearWeight): tf.Tensor2D {
  const bias: Inputs = w.bias ? { bias: w.bias } : {};
  switch (w.kind) {
    case 'f32':
      return run(KERNEL.linearF32, { x, w: w.w, ...bias });
    case 'q8':
      return run(KERNEL.linearQ8, { x, q: w.q, scale: w.scale, ...bias }, { inF: w.inF });
    case 'q4':
      return run(KERNEL.linearQ4, { x, q: w.q, scale: w.scale, ...bias }, { inF: w.inF, groupSize: w.groupSize });
  }
}

/** ids (N) -> (N, C). Gradient: the table, when it is f32; none for q8/q4 tables or ids. */
export function embeddingOp(ids: tf.Tensor1D, table: EmbeddingWeight): tf.Tensor2D {
  switch (table.kind) {
    case 'f32':
      return run(KERNEL.embeddingF32, { ids, w: table.w }, { vocab: table.outF });
    case 'q8':
      return run(KERNEL.embeddingQ8, { ids, q: table.q, scale: table.scale }, { inF: table.inF });
    case 'q4':
      return run(KERNEL.embeddingQ4, { ids, q: table.q, scale: table.scale }, { inF: table.inF, groupSize: table.groupSize });
  }
}

export function layerNormOp(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  return run(KERNEL.layerNorm, { x, gamma, beta }, { eps });
}

export function rmsNormOp(x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor2D {
  return run(KERNEL.rmsNorm, { x, gamma }, { eps });
}

export function ropeOp(x: tf.Tensor3D, positions: tf.Tensor2D, nHeads: number, headDim: number, theta: number): tf.Tensor3D {
  return run(KERNEL.rope, { x, positions }, { nHeads, headDim, theta });
}

export function geluTanhOp(x: tf.Tensor2D): tf.Tensor2D {
  return run(KERNEL.geluTanh, { x });
}

export function siluMulOp(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  return run(KERNEL.siluMul, { gate, up });
}

export function pixelShuffleOp(x: tf.Tensor3D, factor: number): tf.Tensor3D {
  return run(KERNEL.pixelShuffle, { x }, { factor, patches: x.shape[1] });
}
