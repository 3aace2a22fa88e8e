// The dataset store against real IndexedDB in the test browser: import -> reload, a full disk
// part-way through an import, delete and undo with the images kept, the editor draft, and
// the keyboard shortcut table.
import { describe, expect, it } from 'vitest';
import type { UseStore } from 'idb-keyval';
import { DatasetStore } from '../../src/lib/stores/dataset.svelte';
import { openDatasetDb } from '../../src/lib/dataset/db';
import { shortcutFor } from '../../src/lib/components/dataset/shortcuts';

let dbCounter = 0;
const dbName = () => `dataset-ui-store-${Date.now()}-${dbCounter++}`;

async function png(seed: number): Promise<Blob> {
  const c = new OffscreenCanvas(4, 4);
  const g = c.getContext('2d')!;
  g.fillStyle = `rgb(${seed * 40}, ${255 - seed * 30}, 90)`;
  g.fillRect(0, 0, 4, 4);
  return c.convertToBlob({ type: 'image/png' });
}

function jsonl(lines: object[]): Blob {
  return new Blob([lines.map((l) => JSON.stringify(l)).join('\n')]);
}
const qa = (image: string, q: string, a: string) => ({
  messages: [{ role: 'user', content: `<image>${q}` }, { role: 'assistant', content: a }],
  images: [image],
});

describe('DatasetStore', () => {
  it('imports, and a second store on the same database loads the same samples', async () => {
    const name = dbName();
    const store = new DatasetStore(openDatasetDb(name));
    await store.load();
    await store.import([
      { path: 'a.png', blob: await png(1) },
      { path: 'b.png', blob: await png(2) },
      { path: 'd.jsonl', blob: jsonl([qa('a.png', 'qa', 'x'), qa('b.png', 'qb', 'y')]) },
    ]);
    expect(store.importReport?.stored).toBe(2);
    expect(store.samples.map((s) => s.turns[1].text)).toEqual(['x', 'y']);
    expect(store.current?.id).toBe(store.samples[0].id);

    const again = new DatasetStore(openDatasetDb(name));
    await again.load();
    expect(again.samples.map((s) => s.id)).toEqual(store.samples.map((s) => s.id));
    expect(await again.db.hasImages(again.samples.map((s) => s.images[0].hash))).toHaveProperty('size', 2);
  });

  it('a full disk mid-import keeps the chunks already written and says how many', async () => {
    const name = dbName();
    let armed = false;
    let writes = 0;
    // Fails the second readwrite transaction after arming, as the browser would at its quota.
    const wrapStore = (use: UseStore): UseStore => (mode, cb) => {
      if (armed && mode === 'readwrite' && ++writes >= 2) return Promise.reject(new DOMException('quota', 'QuotaExceededError'));
      return use(mode, cb);
    };
    const store = new DatasetStore(openDatasetDb(name, { wrapStore }), { writeChunk: 3 });
    await store.load();
    armed = true;
    const lines = Array.from({ length: 7 }, (_, i) => qa('a.png', `q${i}`, `a${i}`));
    await store.import([{ path: 'a.png', blob: await png(3) }, { path: 'd.jsonl', blob: jsonl(lines) }]);
    expect(store.importReport?.stored).toBe(3);
    expect(store.importReport?.storageFull).toMatch(/storage is full: 3 of 7 new samples were stored, 4 were not/);
    expect(store.samples).toHaveLength(3);
    const reread = new DatasetStore(openDatasetDb(name));
    await reread.load();
    expect(reread.samples.map((s) => s.turns[0].text)).toEqual(['<image>q0', '<image>q1', '<image>q2']);
  });

  it('delete then undo restores samples; images are purged only once the undo is dropped', async () => {
    const store = new DatasetStore(openDatasetDb(dbName()));
    await store.load();
    await store.import([
      { path: 'a.png', blob: await png(4) },
      { path: 'b.png', blob: await png(5) },
      { path: 'd.jsonl', blob: jsonl([qa('a.png', 'qa', 'x'), qa('b.png', 'qb', 'y')]) },
    ]);
    const [a, b] = store.samples;
    store.toggleSelected(b.id);
    await store.deleteTargets();
    expect(store.samples.map((s) => s.id)).toEqual([a.id]);
    expect(store.undo?.label).toBe('Deleted 1 sample');
    await store.undoDelete();
    expect(store.samples.map((s) => s.id)).toEqual([a.id, b.id]);
    expect((await store.db.listSamples()).length).toBe(2);

    store.toggleSelected(b.id);
    await store.deleteTargets();
    await store.dropUndo();
    expect(await store.db.getImage(b.images[0].hash)).toBeUndefined();
    expect(await store.db.getImage(a.images[0].hash)).toBeInstanceOf(Blob);
  });

  it('the draft saves on navigation, and split keys save at once', async () => {
    const store = new DatasetStore(openDatasetDb(dbName()));
    await store.load();
    await store.import([
      { path: 'a.png', blob: await png(6) },
      { path: 'b.png', blob: await png(7) },
      { path: 'd.jsonl', blob: jsonl([qa('a.png', 'qa', 'x'), qa('b.png', 'qb', 'y')]) },
    ]);
    store.draft!.turns[1].text = 'edited';
    expect(store.dirty).toBe(true);
    store.step(1);
    await expect.poll(async () => (await store.db.listSamples())[0].turns[1].text).toBe('edited');
    await store.assignSplit('test');
    expect((await store.db.listSamples())[1].split).toBe('test');
    expect(store.dirty).toBe(false);
  });
});

describe('shortcutFor', () => {
  const key = (k: string, init: KeyboardEventInit = {}, target: EventTarget | null = document.body) =>
    shortcutFor({ key: k, code: init.code ?? '', ctrlKey: !!init.ctrlKey, metaKey: !!init.metaKey, altKey: !!init.altKey, shiftKey: false, target });

  it('maps plain keys outside text fields and only modified keys inside them', () => {
    expect(key('j')).toEqual({ type: 'step', delta: 1 });
    expect(key('ArrowUp')).toEqual({ type: 'step', delta: -1 });
    expect(key('2')).toEqual({ type: 'split', split: 'val' });
    expect(key('s', { ctrlKey: true })).toEqual({ type: 'save', thenNext: false });
    expect(key('Enter', { metaKey: true })).toEqual({ type: 'save', thenNext: true });
    expect(key('q')).toBeNull();
    const ta = document.createElement('textarea');
    const checkbox = Object.assign(document.createElement('input'), { type: 'checkbox' });
    expect(key('2', {}, ta)).toBeNull();
    expect(key('j', {}, ta)).toBeNull();
    expect(key('¡', { altKey: true, code: 'Digit1' }, ta)).toEqual({ type: 'split', split: 'train' });
    expect(key('s', { ctrlKey: true }, ta)).toEqual({ type: 'save', thenNext: false });
    expect(key('3', {}, checkbox)).toEqual({ type: 'split', split: 'test' });
  });
});
