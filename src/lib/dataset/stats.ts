// Dataset statistics for the stats panel: how the samples fall into splits, kinds and stages,
// how many are labelled, the business:general ratio against the project's target (playbook
// §2, §5), and how long the answers are (playbook §6: short labels make terse models, and
// output length is later tracked against these label lengths).

import { DATA_KINDS, SPLITS, isLabelled, type DataKind, type Project, type Sample, type Split } from './schema';

export interface HistogramBin {
  /** Inclusive lower edge. */
  lo: number;
  /** Exclusive upper edge (the last bin includes the maximum). */
  hi: number;
  count: number;
}

export interface Distribution {
  count: number;
  min: number;
  max: number;
  mean: number;
  median: number;
  p90: number;
  bins: HistogramBin[];
}

export interface DatasetStats {
  total: number;
  labelled: number;
  unlabelled: number;
  perSplit: Record<Split, number>;
  perKind: Record<DataKind, number>;
  /** Stage -> count, ascending by stage. */
  perStage: { stage: number; count: number }[];
  business: number;
  /** general_caption + general_instruction. */
  general: number;
  /** business / general; Infinity when there is business data and no general data; null when both are 0. */
  ratio: number | null;
  targetRatio: number;
  /** Lengths of every non-blank assistant turn. */
  answerChars: Distribution;
  answerWords: Distribution;
}

/** Linear-interpolated quantile of sorted values (numpy's default), q in [0, 1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Summary and histogram; bin width is a whole number chosen so at most `maxBins` bins cover 0..max. */
export function distribution(values: readonly number[], maxBins = 12): Distribution {
  if (values.length === 0) return { count: 0, min: 0, max: 0, mean: 0, median: 0, p90: 0, bins: [] };
  const sorted = [...values].sort((a, b) => a - b);
  const max = sorted[sorted.length - 1];
  const width = Math.max(1, Math.ceil((max + 1) / maxBins));
  const nBins = Math.ceil((max + 1) / width);
  const bins: HistogramBin[] = Array.from({ length: nBins }, (_, i) => ({ lo: i * width, hi: (i + 1) * width, count: 0 }));
  for (const v of sorted) bins[Math.min(nBins - 1, Math.floor(v / width))].count++;
  return {
    count: sorted.length,
    min: sorted[0],
    max,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    bins,
  };
}

export function wordCount(text: string): number {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}

export function datasetStats(samples: readonly Sample[], project: Pick<Project, 'targetBusinessToGeneral'>): DatasetStats {
  const perSplit = Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<Split, number>;
  const perKind = Object.fromEntries(DATA_KINDS.map((k) => [k, 0])) as Record<DataKind, number>;
  const stages = new Map<number, number>();
  let labelled = 0;
  const chars: number[] = [];
  const words: number[] = [];
  for (const s of samples) {
    perSplit[s.split]++;
    perKind[s.kind]++;
    stages.set(s.stage, (stages.get(s.stage) ?? 0) + 1);
    if (isLabelled(s)) labelled++;
    for (const t of s.turns) {
      if (t.role !== 'assistant' || t.text.trim() === '') continue;
      chars.push(t.text.length);
      words.push(wordCount(t.text));
    }
  }
  const business = perKind.business;
  const general = samples.length - business;
  return {
    total: samples.length,
    labelled,
    unlabelled: samples.length - labelled,
    perSplit,
    perKind,
    perStage: [...stages].sort((a, b) => a[0] - b[0]).map(([stage, count]) => ({ stage, count })),
    business,
    general,
    ratio: general > 0 ? business / general : business > 0 ? Infinity : null,
    targetRatio: project.targetBusinessToGeneral,
    answerChars: distribution(chars),
    answerWords: distribution(words),
  };
}
