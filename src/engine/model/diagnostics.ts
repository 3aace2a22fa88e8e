// How far a quantized model drifts from its f32 original on one input: the numbers behind the
// UI's choice of q8/q4 and the tests' bounds. Both models run the same ops on the same input;
// the logits of every position are compared.
import type { ModelInputs } from '../inputs';
import type { Ops } from '../ops/ops';
import type { ModelWeights } from '../weights';
import { Idefics3Model } from './vlm';

export interface QuantizationError {
  /** max over positions and vocab of |logit_q - logit_f32| */
  maxAbsLogitDiff: number;
  meanAbsLogitDiff: number;
  /** Fraction of positions whose argmax token is the same in both. */
  top1Agreement: number;
  /** Largest |logit| of the f32 model, to read the differences against. */
  maxAbsLogit: number;
}

export async function quantizationError(
  weightsF32: ModelWeights,
  weightsQ: ModelWeights,
  ops: Ops,
  inputs: ModelInputs,
): Promise<QuantizationError> {
  const V = weightsF32.config.lm_vocab_size;
  const ref = await allLogits(new Idefics3Model(weightsF32, ops), inputs); // (T*V)
  const got = await allLogits(new Idefics3Model(weightsQ, ops), inputs); // (T*V)
  const T = ref.length / V;
  let maxAbs = 0;
  let sumAbs = 0;
  let maxRef = 0;
  let agree = 0;
  for (let t = 0; t < T; t++) {
    let bestR = 0;
    let bestG = 0;
    for (let v = 0; v < V; v++) {
      const i = t * V + v;
      const d = Math.abs(got[i] - ref[i]);
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      if (ref[i] > ref[t * V + bestR]) bestR = v;
      if (got[i] > got[t * V + bestG]) bestG = v;
    }
    if (bestR === bestG) agree++;
  }
  return { maxAbsLogitDiff: maxAbs, meanAbsLogitDiff: sumAbs / ref.length, top1Agreement: agree / T, maxAbsLogit: maxRef };
}

async function allLogits(model: Idefics3Model, inputs: ModelInputs): Promise<Float32Array> {
  const { logits } = model.forward(inputs, { logits: 'all' }); // (T, V)
  try {
    return (await logits.data()) as Float32Array;
  } finally {
    logits.dispose();
  }
}
