// Pure dataset logic: split, bulk setters, filter, stats, answer validation, CSV reader, JSON error positions.
import { describe, expect, it } from 'vitest';
import { addTags, randomSplit, removeTags, setKind, setStage, splitCounts } from '../../src/lib/dataset/bulk';
import { filterSamples } from '../../src/lib/dataset/filter';
import { datasetStats, distribution } from '../../src/lib/dataset/stats';
import { validateAnswer } from '../../src/lib/dataset/answer_format';
import { parseCsv } from '../../src/lib/dataset/import/csv';
import { describeJsonError } from '../../src/lib/dataset/json_error';
import type { DataKind, Sample, Split } from '../../src/lib/dataset/schema';

function sample(i: number, over: Partial<Sample> = {}): Sample {
  return {
    v: 1, id: `s${i}`, projectId: 'p', images: [], split: 'train', kind: 'business', stage: 1, tags: [], source: `f.jsonl:${i}`,
    turns: [{ role: 'user', text: `<image>question ${i}` }, { role: 'assistant', text: `answer ${i}` }],
    createdAt: i, updatedAt: i, ...over,
  };
}

describe('randomSplit', () => {
  it('gives exact counts and is deterministic regardless of input order', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `id${i}`);
    const a = randomSplit(ids, { train: 80, val: 10, test: 10 }, 7);
    const count = (m: Map<string, Split>, s: Split) => [...m.values()].filter((x) => x === s).length;
    expect([count(a, 'train'), count(a, 'val'), count(a, 'test')]).toEqual([800, 100, 100]);
    const b = randomSplit([...ids].reverse(), { train: 0.8, val: 0.1, test: 0.1 }, 7);
    expect([...b.entries()].sort()).toEqual([...a.entries()].sort());
    const c = randomSplit(ids, { train: 80, val: 10, test: 10 }, 8);
    expect([...c.entries()].sort()).not.toEqual([...a.entries()].sort());
  });
  it('rounds by largest remainder so counts always sum to n', () => {
    expect(splitCounts(7, { train: 1, val: 1, test: 1 })).toEqual({ train: 3, val: 2, test: 2 });
    expect(splitCounts(10, { train: 85, val: 15, test: 0 })).toEqual({ train: 9, val: 1, test: 0 }); // 8.5 vs 1.5: tie goes to train
    expect(splitCounts(0, { train: 8, val: 1, test: 1 })).toEqual({ train: 0, val: 0, test: 0 });
    expect(() => splitCounts(5, { train: 0, val: 0, test: 0 })).toThrow(/positive sum/);
  });
});

describe('bulk setters', () => {
  it('set kind/stage and add/remove tags on copies', () => {
    const xs = [sample(1, { tags: ['a'] }), sample(2)];
    expect(setKind(xs, 'general_caption').map((s) => s.kind)).toEqual(['general_caption', 'general_caption']);
    expect(setStage(xs, 2).map((s) => s.stage)).toEqual([2, 2]);
    expect(() => setStage(xs, 0)).toThrow(/stage must be/);
    expect(addTags(xs, ['a', ' b ', 'b', '']).map((s) => s.tags)).toEqual([['a', 'b'], ['a', 'b']]);
    expect(removeTags(xs, ['a']).map((s) => s.tags)).toEqual([[], []]);
    expect(xs[0].tags).toEqual(['a']); // originals untouched
  });
});

describe('filterSamples', () => {
  const kinds: DataKind[] = ['business', 'general_caption', 'general_instruction'];
  const splits: Split[] = ['train', 'val', 'test'];
  const many = Array.from({ length: 6000 }, (_, i) =>
    sample(i, {
      split: splits[i % 3], kind: kinds[i % 3 === 0 ? 0 : (i % 5) % 3], stage: 1 + (i % 2), tags: i % 7 === 0 ? ['hard'] : [],
      turns: i % 4 === 0 ? [{ role: 'user', text: `<image>Q${i}` }] : [{ role: 'user', text: `<image>Q${i}` }, { role: 'assistant', text: i === 4321 ? 'The Zebra' : 'x' }],
    }),
  );
  it('combines split, kind, stage, tag and labelled', () => {
    const got = filterSamples(many, { split: 'val', stage: 2, tag: 'hard', labelled: 'labelled', kind: 'all' });
    const want = many.filter((s) => s.split === 'val' && s.stage === 2 && s.tags.includes('hard') && s.turns.length === 2);
    expect(got).toEqual(want);
    expect(got.length).toBeGreaterThan(0);
    expect(filterSamples(many, { labelled: false }).length).toBe(1500);
    expect(filterSamples(many, { labelled: 'all', split: 'all', text: '' }).length).toBe(6000);
  });
  it('searches turns, tags and source case-insensitively', () => {
    expect(filterSamples(many, { text: 'zebra' }).map((s) => s.id)).toEqual(['s4321']);
    expect(filterSamples(many, { text: 'HARD' }).length).toBe(Math.ceil(6000 / 7));
    expect(filterSamples(many, { text: 'f.jsonl:5999' }).map((s) => s.id)).toEqual(['s5999']);
  });
});

describe('datasetStats', () => {
  it('counts splits, kinds, stages, labels and the business:general ratio', () => {
    const xs = [
      sample(1), sample(2, { split: 'val' }), sample(3, { kind: 'general_caption', stage: 2 }),
      sample(4, { turns: [{ role: 'user', text: '<image>' }] }),
    ];
    const st = datasetStats(xs, { targetBusinessToGeneral: 10 });
    expect(st.perSplit).toEqual({ train: 3, val: 1, test: 0 });
    expect(st.perKind).toEqual({ business: 3, general_caption: 1, general_instruction: 0 });
    expect(st.perStage).toEqual([{ stage: 1, count: 3 }, { stage: 2, count: 1 }]);
    expect([st.labelled, st.unlabelled, st.total]).toEqual([3, 1, 4]);
    expect([st.business, st.general, st.ratio, st.targetRatio]).toEqual([3, 1, 3, 10]);
    expect(datasetStats([sample(1)], { targetBusinessToGeneral: 5 }).ratio).toBe(Infinity);
    expect(datasetStats([], { targetBusinessToGeneral: 5 }).ratio).toBeNull();
  });
  it('summarises answer lengths in characters and words', () => {
    const ans = ['a', 'two words', 'three little words', 'x'.repeat(40)];
    const xs = ans.map((t, i) => sample(i, { turns: [{ role: 'user', text: 'q' }, { role: 'assistant', text: t }] }));
    const st = datasetStats(xs, { targetBusinessToGeneral: 10 });
    expect(st.answerChars).toMatchObject({ count: 4, min: 1, max: 40, mean: (1 + 9 + 18 + 40) / 4, median: 13.5 });
    expect(st.answerChars.p90).toBeCloseTo(18 + 0.7 * 22);
    expect(st.answerWords).toMatchObject({ count: 4, min: 1, max: 3, median: 1.5 });
    expect(st.answerChars.bins.reduce((a, b) => a + b.count, 0)).toBe(4);
  });
  it('histogram bins cover 0..max with whole-number widths', () => {
    const d = distribution([0, 5, 11, 23], 4);
    expect(d.bins).toEqual([
      { lo: 0, hi: 6, count: 2 }, { lo: 6, hi: 12, count: 1 }, { lo: 12, hi: 18, count: 0 }, { lo: 18, hi: 24, count: 1 },
    ]);
  });
});

describe('validateAnswer', () => {
  const json = { type: 'json' as const, fields: ['name', 'price'] };
  it('accepts a matching JSON object and lists missing and extra fields', () => {
    expect(validateAnswer('{"name": "tea", "price": 3}', json)).toEqual({ ok: true, errors: [] });
    const r = validateAnswer('{"name": "tea", "colour": "green", "size": 1}', json);
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual(['missing field: price', 'unknown extra fields: colour, size (declared: name, price)']);
  });
  it('gives the position of a JSON syntax error', () => {
    const r = validateAnswer('{"name": "tea",\n "price": }', json);
    expect(r.errors).toEqual(["not valid JSON: expected a value but found '}' at line 2, column 11"]);
    expect(validateAnswer('[1, 2]', json).errors[0]).toMatch(/expected a JSON object/);
    expect(validateAnswer('```json\n{}\n```', json).errors[0]).toMatch(/code fence/);
  });
  it('multiple choice must be one of the choices', () => {
    const mc = { type: 'multiple_choice' as const, choices: ['A', 'B', 'C'] };
    expect(validateAnswer(' B ', mc).ok).toBe(true);
    expect(validateAnswer('D', mc)).toEqual({ ok: false, errors: ['"D" is not one of the choices: "A", "B", "C"'] });
    expect(validateAnswer('b', mc).errors[0]).toMatch(/did you mean "B"/);
  });
  it('free text accepts any non-blank answer', () => {
    expect(validateAnswer('anything', { type: 'free_text' }).ok).toBe(true);
    expect(validateAnswer('  ', { type: 'free_text' })).toEqual({ ok: false, errors: ['answer is empty'] });
  });
});

describe('parseCsv', () => {
  it('reads RFC 4180 quoting and reports row start lines', () => {
    const p = parseCsv('a,b\n"x, y","multi\nline ""quoted"""\n\nlast,\n');
    expect(p.rows).toEqual([
      { cells: ['a', 'b'], line: 1 },
      { cells: ['x, y', 'multi\nline "quoted"'], line: 2 },
      { cells: ['last', ''], line: 5 },
    ]);
    expect(p.error).toBeUndefined();
  });
  it('detects tab and semicolon delimiters and reports an unclosed quote', () => {
    expect(parseCsv('a\tb\n1\t2').rows[1].cells).toEqual(['1', '2']);
    expect(parseCsv('a;b\n1;2').rows[1].cells).toEqual(['1', '2']);
    const bad = parseCsv('a,b\n1,2\n3,"open\nmore');
    expect(bad.rows.map((r) => r.line)).toEqual([1, 2]);
    expect(bad.error).toEqual({ line: 3, reason: 'quoted field opened on line 3 is never closed' });
  });
});

describe('describeJsonError', () => {
  it('locates errors the engine does not', () => {
    for (const [text, want] of [
      ['{"a": 1,}', "expected a \"quoted\" field name but found '}' at line 1, column 9"],
      ['[1 2]', "expected ',' or ']' but found '2' at line 1, column 4"],
      ['{"a": "x\ny"}', 'unescaped control character (e.g. a raw line break) inside a string at line 1, column 9'],
      ['{"a": 1} x', "unexpected 'x' after the end of the JSON value at line 1, column 10"],
      ['{"a": tru}', "expected a value but found 't' at line 1, column 7"],
    ] as const) {
      let err: unknown;
      try {
        JSON.parse(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeDefined();
      expect(describeJsonError(text, err).message).toBe(want);
    }
  });
});
