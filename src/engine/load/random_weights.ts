// Random but correctly named and shaped weights for any VlmConfig: model tests, the tiny
// fixture checkpoint and the benchmark (which needs SmolVLM-256M's shapes without its files).
// Generated tensor by tensor so even the real config never holds more than one tensor on the
// host. Each tensor has its own seed derived from (seed, name), so adding a layer or changing
// one shape leaves every other tensor's values unchanged.
//
// Values: linear / embedding / position weights ~ N(0, 0.02^2) (transformers' init range),
// biases and LayerNorm betas ~ N(0, 0.02^2) (not zero, so a dropped bias shows in tests),
// norm gammas ~ 1 + N(0, 0.1^2) (not exactly 1, so a dropped gamma shows too).
import type { VlmConfig } from '../config';
import type { Quantization } from '../weights';
import { mulberry32, randn } from '../../lib/util/rng';
import { GpuWeights, type HostTensor } from './gpu_weights';
import { expectedWeights } from './weight_names';

export { expectedWeightShapes } from './weight_names';

/** FNV-1a of the name mixed with the seed: a stable per-tensor seed. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One random tensor per expected weight, in model order, each created only when asked for. */
export function* randomHostTensors(config: VlmConfig, seed: number): Generator<HostTensor> {
  for (const [name, spec] of expectedWeights(config)) {
    const rng = mulberry32(tensorSeed(seed, name));
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isGamma = spec.role === 'norm' && name.endsWith('.weight');
    for (let i = 0; i < n; i++) data[i] = isGamma ? 1 + 0.1 * randn(rng) : 0.02 * randn(rng);
    yield { name, shape: [...spec.shape], data };
  }
}

/** A full set of random GPU weights for `config`, stored as `quantization` asks. */
export function randomWeights(config: VlmConfig, quantization: Quantization = 'f32', seed = 0, q4GroupSize?: number): GpuWeights {
  return GpuWeights.fromHostTensors(config, { quantization, q4GroupSize }, randomHostTensors(config, seed));
}
