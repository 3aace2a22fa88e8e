// Random GPU weights for any VlmConfig (model tests, the benchmark): the host tensors of
// random_tensors.ts uploaded one at a time through GpuWeights.
import type { VlmConfig } from '../config';
import type { Quantization } from '../weights';
import { GpuWeights } from './gpu_weights';
import { randomHostTensors, type RandomWeightOptions } from './random_tensors';

export { expectedWeightShapes } from './weight_names';
export { randomHostTensors, type RandomWeightOptions } from './random_tensors';

/** A full set of random GPU weights for `config`, stored as `quantization` asks. */
export function randomWeights(
  config: VlmConfig,
  quantization: Quantization = 'f32',
  seed = 0,
  q4GroupSize?: number,
  opts: RandomWeightOptions = {},
): GpuWeights {
  return GpuWeights.fromHostTensors(config, { quantization, q4GroupSize }, randomHostTensors(config, seed, opts));
}
