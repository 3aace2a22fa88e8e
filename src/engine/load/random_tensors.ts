// Random but correctly named and shaped host tensors for any VlmConfig: model tests, the tiny
// fixture checkpoint and the benchmark (which needs SmolVLM-256M's shapes without its files).
// Free of tfjs so the fixture script can use it; random_weights.ts puts them on the GPU.
// Generated tensor by tensor so even the real config never holds more than one tensor on the
// host. Each tensor has its own seed derived from (seed, name), so adding a layer or changing
// one shape leaves every other tensor's values unchanged.
//
// Values: linear / embedding / position weights ~ N(0, 0.02^2) (transformers' init range;
// linears' std adjustable),
// biases and LayerNorm betas ~ N(0, 0.02^2) (not zero, so a dropped bias shows in tests),
// norm gammas ~ 1 + N(0, 0.1^2) (not exactly 1, so a dropped gamma shows too).
import type { VlmConfig } from '../config';
import { mulberry32, randn } from '../../lib/util/rng';
import type { HostTensor } from './gpu_weights';
import { expectedWeights } from './weight_names';

/** FNV-1a of the name mixed with the seed: a stable per-tensor seed. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface RandomWeightOptions {
  /**
   * Std of linear and embedding weights (default 0.02). Tiny models want more (~0.15): at 0.02
   * their attention is nearly uniform and their logits nearly flat, so mistakes hardly show.
   */
  linearStd?: number;
}

/** One random tensor per expected weight, in model order, each created only when asked for. */
export function* randomHostTensors(config: VlmConfig, seed: number, opts: RandomWeightOptions = {}): Generator<HostTensor> {
  const linearStd = opts.linearStd ?? 0.02;
  for (const [name, spec] of expectedWeights(config)) {
    const rng = mulberry32(tensorSeed(seed, name));
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isGamma = spec.role === 'norm' && name.endsWith('.weight');
    const std = spec.role === 'linear' || spec.role === 'conv' ? linearStd : 0.02;
    for (let i = 0; i < n; i++) data[i] = isGamma ? 1 + 0.1 * randn(rng) : std * randn(rng);
    yield { name, shape: [...spec.shape], data };
  }
}
