// Numeric comparison for kernel tests (llm.c validate_result style): |got - ref| <= atol + rtol*|ref|
// elementwise; on failure the message lists the first mismatches and the max difference.
import { expect } from 'vitest';

export interface CloseReport {
  ok: boolean;
  maxDiff: number;
  mismatches: number;
  message: string;
}

export function compareClose(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  atol = 1e-4,
  rtol = 1e-4,
  label = 'values',
): CloseReport {
  if (got.length !== ref.length) {
    return { ok: false, maxDiff: Infinity, mismatches: -1, message: `${label}: length ${got.length} != ${ref.length}` };
  }
  let maxDiff = 0;
  let mismatches = 0;
  const first: string[] = [];
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= atol + rtol * Math.abs(ref[i]))) {
      mismatches++;
      if (first.length < 8) first.push(`  [${i}] got ${got[i]} ref ${ref[i]} diff ${d}`);
    }
    if (d > maxDiff || Number.isNaN(d)) maxDiff = Number.isNaN(d) ? Infinity : d;
  }
  const message =
    mismatches === 0
      ? `${label}: ok, maxdiff ${maxDiff.toExponential(3)}`
      : `${label}: ${mismatches}/${ref.length} mismatches (atol ${atol}, rtol ${rtol}), maxdiff ${maxDiff.toExponential(3)}\n${first.join('\n')}`;
  return { ok: mismatches === 0, maxDiff, mismatches, message };
}

export function expectClose(got: ArrayLike<number>, ref: ArrayLike<number>, atol = 1e-4, rtol = 1e-4, label = 'values'): number {
  const r = compareClose(got, ref, atol, rtol, label);
  expect(r.ok, r.message).toBe(true);
  return r.maxDiff;
}
