// Which samples the grid shows. One pass over the samples, cheapest tests first; the text
// search lower-cases each sample's text only when a search is active, which keeps a filter
// over 5,000+ samples to a few milliseconds.

import { isLabelled, type DataKind, type Sample, type Split } from './schema';

/** Every field is optional; `'all'`, `''` and undefined mean "any". */
export interface SampleFilter {
  split?: Split | 'all';
  kind?: DataKind | 'all';
  stage?: number | 'all';
  /** Exact tag. */
  tag?: string;
  labelled?: boolean | 'all' | 'labelled' | 'unlabelled';
  /** Case-insensitive substring of any turn's text, any tag, or the source. */
  text?: string;
}

function wantLabelled(l: SampleFilter['labelled']): boolean | undefined {
  if (l === true || l === 'labelled') return true;
  if (l === false || l === 'unlabelled') return false;
  return undefined;
}

function haystack(s: Sample): string {
  let h = s.source;
  for (const t of s.turns) h += '\u0000' + t.text;
  for (const t of s.tags) h += '\u0000' + t;
  return h.toLowerCase();
}

export function filterSamples(samples: readonly Sample[], f: SampleFilter): Sample[] {
  const split = f.split && f.split !== 'all' ? f.split : undefined;
  const kind = f.kind && f.kind !== 'all' ? f.kind : undefined;
  const stage = f.stage !== undefined && f.stage !== 'all' ? f.stage : undefined;
  const tag = f.tag?.trim() || undefined;
  const labelled = wantLabelled(f.labelled);
  const text = f.text?.trim().toLowerCase() || undefined;
  return samples.filter(
    (s) =>
      (split === undefined || s.split === split) &&
      (kind === undefined || s.kind === kind) &&
      (stage === undefined || s.stage === stage) &&
      (tag === undefined || s.tags.includes(tag)) &&
      (labelled === undefined || isLabelled(s) === labelled) &&
      (text === undefined || haystack(s).includes(text)),
  );
}
