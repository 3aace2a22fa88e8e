// What the Train tab says about the dataset before a run: how many labelled samples the worker
// will find in each split and kind. Counting only; the worker reads the samples itself.
import { isLabelled, type Sample } from '../../dataset/schema';

export interface DataCounts {
  trainBusiness: number;
  trainGeneral: number;
  /** Labelled validation samples. */
  val: number;
  /** Train-split samples without an answer: left out of training. */
  unlabelledTrain: number;
}

export function countTrainingData(samples: readonly Sample[]): DataCounts {
  const c: DataCounts = { trainBusiness: 0, trainGeneral: 0, val: 0, unlabelledTrain: 0 };
  for (const s of samples) {
    if (!isLabelled(s)) {
      if (s.split === 'train') c.unlabelledTrain++;
    } else if (s.split === 'val') c.val++;
    else if (s.split === 'train') {
      if (s.kind === 'business') c.trainBusiness++;
      else c.trainGeneral++;
    }
  }
  return c;
}
