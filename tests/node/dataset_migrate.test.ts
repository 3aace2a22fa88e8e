import { describe, expect, it } from 'vitest';
import { MigrationError, migrateProject, migrateSample, type SampleV0 } from '../../src/lib/dataset/migrate';
import { DATASET_SCHEMA_VERSION, type Sample } from '../../src/lib/dataset/schema';

const img = { hash: 'ab'.repeat(32), type: 'image/png', width: 4, height: 3, size: 99, name: 'a.png' };

describe('migrateSample', () => {
  it('lifts a v0 question/answer/image record to v1 turns and images', () => {
    const v0: SampleV0 = { id: 'old1', projectId: 'p', image: img, question: 'What is it?', answer: 'A cup.', split: 'val', tags: ['x'], createdAt: 5 };
    const s = migrateSample(v0);
    expect(s).toEqual({
      v: 1, id: 'old1', projectId: 'p', images: [img],
      turns: [{ role: 'user', text: '<image>What is it?' }, { role: 'assistant', text: 'A cup.' }],
      split: 'val', kind: 'business', stage: 1, tags: ['x'], source: 'migrated from v0', createdAt: 5, updatedAt: 5,
    } satisfies Sample);
  });
  it('keeps an existing placeholder, drops a blank answer, defaults a bad split', () => {
    const s = migrateSample({ v: 0, id: 'o', image: img, question: 'Look <image> here', answer: '  ', split: 'dev' });
    expect(s.turns).toEqual([{ role: 'user', text: 'Look <image> here' }]);
    expect(s.split).toBe('train');
  });
  it('passes current records through and refuses newer or broken ones with a reason', () => {
    const cur = migrateSample({ v: 0, id: 'o', image: img, question: 'q' });
    expect(migrateSample(cur)).toBe(cur);
    expect(() => migrateSample({ ...cur, v: DATASET_SCHEMA_VERSION + 1 })).toThrow(/newer version of the app/);
    expect(() => migrateSample({ id: 'z', question: 'q' })).toThrow(MigrationError);
    expect(() => migrateSample('nope')).toThrow(/not an object/);
  });
});

describe('migrateProject', () => {
  it('lifts a v0 project and fills the new fields with defaults', () => {
    const p = migrateProject({ id: 'p0', name: 'Receipts', prompt: 'Read: {question}', createdAt: 3 });
    expect(p).toMatchObject({ v: 1, id: 'p0', name: 'Receipts', defaultPrompt: 'Read: {question}', answerFormat: { type: 'free_text' }, targetBusinessToGeneral: 10, createdAt: 3 });
  });
});
