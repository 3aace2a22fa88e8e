// The dataset workspace in IndexedDB, through idb-keyval.
//
// Everything lives in ONE object store ("records") of one database, told apart by key prefix:
//   project:<id>       Project
//   sample:<id>        Sample (metadata only: turns, labels, ImageRefs)
//   image:<sha256hex>  Blob (the image bytes; shared by every sample that uses them)
// One store is what makes a sample and its image blobs one transaction: idb-keyval's
// createStore opens a single store per database, and two stores would be two transactions
// (TRAPS.md). Listing reads only the `sample:` key range, so it never loads image bytes.

import { createStore, type UseStore } from 'idb-keyval';
import { defaultProject, type Project, type Sample } from './schema';
import { migrateProject, migrateSample } from './migrate';

export interface StorageInfo {
  usage: number;
  quota: number;
  persisted: boolean;
}

/** The browser refused a write for lack of space. The write was one transaction, so it left nothing behind. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
  constructor(what = 'the data', options?: { cause?: unknown }) {
    super(
      `The browser's storage for this site is full, so ${what} could not be saved. ` +
        'Nothing already stored was lost, and nothing of this write was kept. ' +
        'Free space by deleting samples you no longer need (then "purge unused images"), ' +
        'or export the dataset and start a fresh project, and try again.',
      options,
    );
  }
}

/** A new sample with the bytes of its images: hash -> blob for (a subset of) sample.images. */
export interface NewSample {
  sample: Sample;
  blobs: Map<string, Blob>;
}

export interface DatasetDb {
  /** The project; creates and stores a default project if none exists. */
  getProject(): Promise<Project>;
  /** Stores the project (bumps updatedAt). */
  saveProject(p: Project): Promise<void>;
  /** Every sample's metadata (no image bytes), sorted by createdAt then id. */
  listSamples(): Promise<Sample[]>;
  getSample(id: string): Promise<Sample | undefined>;
  /**
   * Stores the samples and their image blobs in one transaction: all or nothing.
   * Blobs already stored are not rewritten. Every image a sample references must either
   * come with it or already be stored, else nothing is written and an Error names it.
   */
  putSamples(items: NewSample[]): Promise<void>;
  /** Metadata edits of existing samples (bumps updatedAt); one transaction; throws if one no longer exists. */
  updateSamples(samples: Sample[]): Promise<void>;
  /** Removes the sample records (not their images) and returns those that existed. Undo: putSamples with empty blob maps. */
  deleteSamples(ids: string[]): Promise<Sample[]>;
  getImage(hash: string): Promise<Blob | undefined>;
  /** The subset of `hashes` whose image bytes are stored. */
  hasImages(hashes: string[]): Promise<Set<string>>;
  /** Deletes image records no sample references; returns how many. */
  purgeOrphanImages(): Promise<number>;
  storageInfo(): Promise<StorageInfo>;
  /** Asks the browser not to evict this site's data under storage pressure. */
  requestPersistence(): Promise<boolean>;
  /** Deletes every record (project, samples, images). */
  clearAll(): Promise<void>;
}

/** Test hooks. `wrapStore` lets a test inject failures (e.g. a QuotaExceededError mid-write). */
export interface DatasetDbOptions {
  wrapStore?: (store: UseStore) => UseStore;
}

export const PROJECT_PREFIX = 'project:';
export const SAMPLE_PREFIX = 'sample:';
export const IMAGE_PREFIX = 'image:';

const sampleKey = (id: string) => SAMPLE_PREFIX + id;
const imageKey = (hash: string) => IMAGE_PREFIX + hash;
const projectKey = (id: string) => PROJECT_PREFIX + id;
/** All keys with the prefix: '\uffff' sorts after any character our ids and hashes use. */
const prefixRange = (prefix: string) => IDBKeyRange.bound(prefix, prefix + '\uffff');

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Resolves when the transaction commits; rejects with its error (or a plain abort error). */
function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // A failing request reports first (onerror, while tx.error is still null), then the
    // transaction aborts: keep whichever names the real cause.
    tx.onerror = (ev) => reject((ev.target as IDBRequest | null)?.error ?? tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException('The write was cancelled', 'AbortError'));
  });
}

function isQuotaError(e: unknown): boolean {
  return (
    (e instanceof DOMException || e instanceof Error) &&
    (e.name === 'QuotaExceededError' || /quota/i.test(e.message))
  );
}

function abortQuietly(tx: IDBTransaction): void {
  try {
    tx.abort();
  } catch {
    // Already finished or aborted: nothing more to undo.
  }
}

/**
 * Runs `body` in one readwrite transaction and waits for it to commit. Any error thrown by
 * `body` (even after some writes were issued) aborts the transaction, so a write is whole or
 * absent. Quota errors come back as StorageFullError.
 */
async function writeTx(use: UseStore, what: string, body: (s: IDBObjectStore) => Promise<void>): Promise<void> {
  try {
    await use('readwrite', async (s) => {
      const committed = done(s.transaction);
      try {
        await body(s);
      } catch (e) {
        abortQuietly(s.transaction);
        committed.catch(() => undefined); // The body's error is the one to report.
        throw e;
      }
      await committed;
    });
  } catch (e) {
    if (isQuotaError(e)) throw new StorageFullError(what, { cause: e });
    throw e;
  }
}

function sortSamples(xs: Sample[]): Sample[] {
  return xs.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function migrateAll(raws: unknown[]): Sample[] {
  const out: Sample[] = [];
  for (const raw of raws) {
    try {
      out.push(migrateSample(raw));
    } catch (e) {
      // One unreadable record must not hide the rest; it stays stored untouched.
      console.warn(`Skipping an unreadable sample record: ${(e as Error).message}`);
    }
  }
  return out;
}

export function openDatasetDb(dbName = 'vlm-workbench', options: DatasetDbOptions = {}): DatasetDb {
  const base = createStore(dbName, 'records');
  const use = options.wrapStore ? options.wrapStore(base) : base;

  return {
    async getProject() {
      let project: Project | undefined;
      // Read-or-create in one readwrite transaction, so two callers cannot both create one.
      await writeTx(use, 'the project', async (s) => {
        const raws = await req(s.getAll(prefixRange(PROJECT_PREFIX)));
        const projects = raws.map(migrateProject).sort((a, b) => a.createdAt - b.createdAt);
        if (projects.length > 0) {
          project = projects[0];
          return;
        }
        project = defaultProject(crypto.randomUUID(), Date.now());
        s.put(project, projectKey(project.id));
      });
      return project!;
    },

    async saveProject(p) {
      const stored: Project = { ...p, updatedAt: Date.now() };
      await writeTx(use, `project "${p.name}"`, async (s) => {
        s.put(stored, projectKey(p.id));
      });
    },

    async listSamples() {
      const raws = await use('readonly', (s) => req(s.getAll(prefixRange(SAMPLE_PREFIX))));
      return sortSamples(migrateAll(raws));
    },

    async getSample(id) {
      const raw = await use('readonly', (s) => req(s.get(sampleKey(id))));
      return raw === undefined ? undefined : migrateSample(raw);
    },

    async putSamples(items) {
      if (items.length === 0) return;
      const what = items.length === 1 ? `sample ${items[0].sample.id}` : `these ${items.length} samples`;
      await writeTx(use, what, async (s) => {
        // Which referenced images are already stored: asked inside the same transaction, so
        // the answer cannot change before the writes below.
        const needed = new Map<string, string>(); // hash -> id of a sample that uses it
        for (const { sample } of items) for (const im of sample.images) if (!needed.has(im.hash)) needed.set(im.hash, sample.id);
        const hashes = [...needed.keys()];
        const found = await Promise.all(hashes.map((h) => req(s.getKey(imageKey(h)))));
        const offered = new Map<string, Blob>();
        for (const { blobs } of items) for (const [h, b] of blobs) offered.set(h, b);
        hashes.forEach((h, i) => {
          if (found[i] !== undefined) return; // Same hash, same bytes: never rewrite.
          const blob = offered.get(h);
          if (!blob) {
            throw new Error(
              `Sample ${needed.get(h)} uses image ${h.slice(0, 12)}…, which is neither stored nor supplied with it; nothing was saved.`,
            );
          }
          s.put(blob, imageKey(h));
        });
        for (const { sample } of items) s.put(sample, sampleKey(sample.id));
      });
    },

    async updateSamples(samples) {
      if (samples.length === 0) return;
      const now = Date.now();
      await writeTx(use, `edits to ${samples.length} sample(s)`, async (s) => {
        const found = await Promise.all(samples.map((x) => req(s.getKey(sampleKey(x.id)))));
        found.forEach((k, i) => {
          if (k === undefined) throw new Error(`Sample ${samples[i].id} no longer exists (deleted?); no edits were saved.`);
        });
        for (const x of samples) s.put({ ...x, updatedAt: now }, sampleKey(x.id));
      });
    },

    async deleteSamples(ids) {
      const removed: Sample[] = [];
      await writeTx(use, 'the deletion', async (s) => {
        const raws = await Promise.all(ids.map((id) => req(s.get(sampleKey(id)))));
        raws.forEach((raw, i) => {
          if (raw === undefined) return;
          removed.push(migrateSample(raw));
          s.delete(sampleKey(ids[i]));
        });
      });
      return removed;
    },

    async getImage(hash) {
      return use('readonly', (s) => req(s.get(imageKey(hash)) as IDBRequest<Blob | undefined>));
    },

    async hasImages(hashes) {
      const keys = await use('readonly', (s) => Promise.all(hashes.map((h) => req(s.getKey(imageKey(h))))));
      return new Set(hashes.filter((_, i) => keys[i] !== undefined));
    },

    async purgeOrphanImages() {
      let n = 0;
      await writeTx(use, 'the purge', async (s) => {
        const [raws, imageKeys] = await Promise.all([
          req(s.getAll(prefixRange(SAMPLE_PREFIX))),
          req(s.getAllKeys(prefixRange(IMAGE_PREFIX))),
        ]);
        const used = new Set<string>();
        for (const raw of raws) {
          // Count images of unreadable records as used: purging must never lose data.
          const imgs = (raw as { images?: { hash?: string }[]; image?: { hash?: string } }).images ?? [];
          for (const im of imgs) if (im?.hash) used.add(im.hash);
          const v0 = (raw as { image?: { hash?: string } }).image;
          if (v0?.hash) used.add(v0.hash);
        }
        for (const k of imageKeys) {
          if (!used.has(String(k).slice(IMAGE_PREFIX.length))) {
            s.delete(k);
            n++;
          }
        }
      });
      return n;
    },

    async storageInfo() {
      const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
      const est = storage?.estimate ? await storage.estimate() : {};
      const persisted = storage?.persisted ? await storage.persisted() : false;
      return { usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
    },

    async requestPersistence() {
      const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
      return storage?.persist ? storage.persist() : false;
    },

    async clearAll() {
      await writeTx(use, 'the reset', async (s) => {
        s.clear();
      });
    },
  };
}
