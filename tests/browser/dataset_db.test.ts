// The IndexedDB workspace in a real browser: persistence across handles, one-transaction
// writes (all or nothing), image dedup, storage-full handling with an injected quota error.
import { describe, expect, it } from 'vitest';
import type { UseStore } from 'idb-keyval';
import { StorageFullError, openDatasetDb, type NewSample } from '../../src/lib/dataset/db';
import { sha256Hex } from '../../src/lib/dataset/hash';
import type { Sample } from '../../src/lib/dataset/schema';

let n = 0;
const uniqueName = () => `dataset-db-test-${Date.now()}-${n++}-${Math.random().toString(36).slice(2)}`;

async function newSample(id: string, imageTexts: string[], createdAt = 1): Promise<NewSample> {
  const blobs = new Map<string, Blob>();
  const images = [];
  for (const t of imageTexts) {
    const blob = new Blob([t], { type: 'image/png' });
    const hash = await sha256Hex(blob);
    blobs.set(hash, blob);
    images.push({ hash, type: 'image/png', width: 2, height: 2, size: blob.size, name: `${t}.png` });
  }
  const sample: Sample = {
    v: 1, id, projectId: 'p', images, split: 'train', kind: 'business', stage: 1, tags: [], source: 'test',
    turns: [{ role: 'user', text: '<image>'.repeat(images.length) + 'q ' + id }, { role: 'assistant', text: 'a' }],
    createdAt, updatedAt: createdAt,
  };
  return { sample, blobs };
}

interface Spy {
  puts: string[];
  getAllRanges: IDBKeyRange[];
  /** Throw this from the put with this index (0-based, counted over the whole db handle). */
  failAtPut?: { index: number; error: () => unknown };
}

/** A store wrapper that records calls and can make a put throw, as a full disk would. */
function spyStore(spy: Spy) {
  return (base: UseStore): UseStore =>
    (mode, cb) =>
      base(mode, (store) =>
        cb(
          new Proxy(store, {
            get(target, key) {
              if (key === 'put') {
                return (value: unknown, k: IDBValidKey) => {
                  if (spy.failAtPut && spy.puts.length === spy.failAtPut.index) throw spy.failAtPut.error();
                  spy.puts.push(String(k));
                  return target.put(value, k);
                };
              }
              if (key === 'getAll') {
                return (q?: IDBKeyRange) => {
                  if (q) spy.getAllRanges.push(q);
                  return target.getAll(q);
                };
              }
              const v = Reflect.get(target, key, target);
              return typeof v === 'function' ? v.bind(target) : v;
            },
          }),
        ),
      );
}

describe('DatasetDb', () => {
  it('persists project, samples and images: a second handle reads them back', async () => {
    const name = uniqueName();
    const db = openDatasetDb(name);
    const project = await db.getProject();
    expect(project.targetBusinessToGeneral).toBe(10);
    await db.saveProject({ ...project, name: 'Receipts' });
    const a = await newSample('a', ['img-a'], 2);
    const b = await newSample('b', ['img-b', 'img-a'], 1);
    await db.putSamples([a, b]);

    const again = openDatasetDb(name);
    const p2 = await again.getProject();
    expect(p2.id).toBe(project.id);
    expect(p2.name).toBe('Receipts');
    const listed = await again.listSamples();
    expect(listed.map((s) => s.id)).toEqual(['b', 'a']); // createdAt order
    expect(listed[1]).toEqual(a.sample);
    expect(await again.getSample('a')).toEqual(a.sample);
    const blob = await again.getImage(a.sample.images[0].hash);
    expect(await blob!.text()).toBe('img-a');
    expect(blob!.type).toBe('image/png');
  });

  it('lists samples through the sample: key range only, never the image records', async () => {
    const spy: Spy = { puts: [], getAllRanges: [] };
    const db = openDatasetDb(uniqueName(), { wrapStore: spyStore(spy) });
    await db.putSamples([await newSample('a', ['x'])]);
    await db.listSamples();
    const r = spy.getAllRanges.at(-1)!;
    expect(r.includes('sample:a')).toBe(true);
    expect(r.includes('image:' + 'f'.repeat(64))).toBe(false);
    expect(r.includes('project:p')).toBe(false);
  });

  it('stores each image once and does not rewrite blobs already stored', async () => {
    const spy: Spy = { puts: [], getAllRanges: [] };
    const db = openDatasetDb(uniqueName(), { wrapStore: spyStore(spy) });
    const a = await newSample('a', ['same']);
    const b = await newSample('b', ['same']);
    await db.putSamples([a]);
    await db.putSamples([b]);
    const h = a.sample.images[0].hash;
    expect(spy.puts.filter((k) => k === `image:${h}`)).toHaveLength(1);
    expect(await db.hasImages([h, 'f'.repeat(64)])).toEqual(new Set([h]));
  });

  it('refuses a sample whose image is neither supplied nor stored, writing nothing', async () => {
    const db = openDatasetDb(uniqueName());
    const a = await newSample('a', ['img1', 'img2']);
    a.blobs.delete(a.sample.images[1].hash);
    await expect(db.putSamples([a])).rejects.toThrow(/neither stored nor supplied/);
    expect(await db.listSamples()).toEqual([]);
    expect((await db.hasImages([a.sample.images[0].hash])).size).toBe(0);
  });

  it('a failing multi-sample put leaves nothing of it (atomic)', async () => {
    const spy: Spy = { puts: [], getAllRanges: [] };
    const name = uniqueName();
    const db = openDatasetDb(name, { wrapStore: spyStore(spy) });
    const items = [await newSample('a', ['1']), await newSample('b', ['2']), await newSample('c', ['3'])];
    // 3 image puts, then sample a, sample b; fail on sample c.
    spy.failAtPut = { index: 5, error: () => new Error('disk on fire') };
    await expect(db.putSamples(items)).rejects.toThrow('disk on fire');
    const fresh = openDatasetDb(name);
    expect(await fresh.listSamples()).toEqual([]);
    expect((await fresh.hasImages(items.flatMap((i) => i.sample.images.map((x) => x.hash)))).size).toBe(0);
  });

  it('turns a QuotaExceededError into StorageFullError and keeps what was stored before', async () => {
    const spy: Spy = { puts: [], getAllRanges: [] };
    const name = uniqueName();
    const db = openDatasetDb(name, { wrapStore: spyStore(spy) });
    const old = await newSample('old', ['old-img']);
    await db.putSamples([old]);
    const big = [await newSample('n1', ['new1']), await newSample('n2', ['new2', 'old-img'])];
    spy.failAtPut = { index: spy.puts.length + 2, error: () => new DOMException('quota exceeded', 'QuotaExceededError') };
    const err = await db.putSamples(big).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect((err as Error).message).toMatch(/storage for this site is full/);
    expect((err as Error).message).toMatch(/Nothing already stored was lost/);
    expect((err as Error).message).toMatch(/delet|export/);
    const fresh = openDatasetDb(name);
    expect(await fresh.listSamples()).toEqual([old.sample]);
    expect(await (await fresh.getImage(old.sample.images[0].hash))!.text()).toBe('old-img');
    const newHashes = big.flatMap((i) => [...i.blobs.keys()]).filter((h) => h !== old.sample.images[0].hash);
    expect((await fresh.hasImages(newHashes)).size).toBe(0);
  });

  it('updates bump updatedAt, deletes return the samples, undo restores, purge removes orphans', async () => {
    const db = openDatasetDb(uniqueName());
    const a = await newSample('a', ['ia']);
    const b = await newSample('b', ['ib']);
    await db.putSamples([a, b]);
    await db.updateSamples([{ ...a.sample, split: 'val' }]);
    const upd = (await db.getSample('a'))!;
    expect(upd.split).toBe('val');
    expect(upd.updatedAt).toBeGreaterThan(a.sample.updatedAt);
    await expect(db.updateSamples([{ ...a.sample, id: 'ghost' }])).rejects.toThrow(/ghost no longer exists/);

    const removed = await db.deleteSamples(['b', 'nope']);
    expect(removed).toEqual([b.sample]);
    expect((await db.listSamples()).map((s) => s.id)).toEqual(['a']);
    await db.putSamples(removed.map((sample) => ({ sample, blobs: new Map() }))); // undo
    expect((await db.listSamples()).map((s) => s.id).sort()).toEqual(['a', 'b']);

    await db.deleteSamples(['b']);
    expect(await db.purgeOrphanImages()).toBe(1);
    expect(await db.getImage(b.sample.images[0].hash)).toBeUndefined();
    expect(await db.getImage(a.sample.images[0].hash)).toBeDefined();
    await expect(db.putSamples([{ sample: b.sample, blobs: new Map() }])).rejects.toThrow(/neither stored nor supplied/);
  });

  it('reports storage, asks for persistence, clears everything', async () => {
    const db = openDatasetDb(uniqueName());
    await db.putSamples([await newSample('a', ['x'])]);
    const info = await db.storageInfo();
    expect(info.quota).toBeGreaterThan(0);
    expect(typeof info.usage).toBe('number');
    expect(typeof info.persisted).toBe('boolean');
    expect(typeof (await db.requestPersistence())).toBe('boolean');
    const p = await db.getProject();
    await db.clearAll();
    expect(await db.listSamples()).toEqual([]);
    expect((await db.getProject()).id).not.toBe(p.id);
  });

  it('migrates v0 records on read', async () => {
    const name = uniqueName();
    const { createStore, set } = await import('idb-keyval');
    const img = { hash: 'c'.repeat(64), type: 'image/png', width: 1, height: 1, size: 1, name: 'o.png' };
    await set('sample:old', { id: 'old', image: img, question: 'q?', answer: 'a', createdAt: 1 }, createStore(name, 'records'));
    const s = (await openDatasetDb(name).listSamples())[0];
    expect(s).toMatchObject({ v: 1, id: 'old', images: [img], turns: [{ role: 'user', text: '<image>q?' }, { role: 'assistant', text: 'a' }] });
  });
});
