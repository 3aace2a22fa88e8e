// Dataset store: what the dataset workspace shows, and every change it makes to IndexedDB.
// The IndexedDB layer (src/lib/dataset/db.ts) is the source of truth; this store keeps a copy
// of the sample list in memory so that filtering and the grid never wait on the database.
// Samples are held as `$state.raw` arrays replaced on every change: deep proxies over 5,000+
// samples would make every filter pass crawl, and records must be plain objects anyway to be
// structured-cloned into IndexedDB.
import { getContext, setContext } from 'svelte';
import type { DataKind, Project, Sample, Split } from '../dataset/schema';
import { StorageFullError, openDatasetDb, type DatasetDb, type NewSample, type StorageInfo } from '../dataset/db';
import { browserDecodeImage, importFiles, type ImportFile, type ImportIssue } from '../dataset/import';
import { filterSamples, type SampleFilter } from '../dataset/filter';
import { addTags, applySplits, randomSplit, removeTags, setKind, setStage, type SplitRatios } from '../dataset/bulk';
import { datasetStats } from '../dataset/stats';

export interface ImportReport {
  /** What the parser found, before storing. */
  counts: { samples: number; images: number; skipped: number };
  issues: ImportIssue[];
  /** How many samples actually reached IndexedDB. */
  stored: number;
  /** Set when the browser's storage filled up part-way; what was stored before stays stored. */
  storageFull: string | null;
}

export interface UndoEntry {
  label: string;
  /** The deleted samples. Their images stay stored until the entry is dropped (see dropUndo). */
  samples: Sample[];
}

export interface DatasetStoreOptions {
  /** Samples per write transaction on import (default 200): a full disk loses only the chunk that did not fit. */
  writeChunk?: number;
}

export function emptyFilter(): SampleFilter {
  return { split: 'all', kind: 'all', stage: 'all', tag: '', labelled: 'all', text: '' };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class DatasetStore {
  readonly db: DatasetDb;
  loaded = $state(false);
  project = $state.raw<Project | null>(null);
  samples = $state.raw<Sample[]>([]);
  filter = $state<SampleFilter>(emptyFilter());
  selection = $state.raw<ReadonlySet<string>>(new Set());
  currentId = $state<string | null>(null);
  /** The editor's working copy of the current sample; saved explicitly (Ctrl+S) or on navigation. */
  draft = $state<Sample | null>(null);
  storage = $state.raw<StorageInfo | null>(null);
  importReport = $state.raw<ImportReport | null>(null);
  busy = $state<string | null>(null);
  error = $state<string | null>(null);
  undo = $state.raw<UndoEntry | null>(null);

  filtered = $derived(filterSamples(this.samples, this.filter));
  current = $derived(this.samples.find((s) => s.id === this.currentId) ?? null);
  currentIndex = $derived(this.filtered.findIndex((s) => s.id === this.currentId));
  /** Bulk actions apply to the selection when there is one, else to everything the filter shows. */
  targets = $derived(this.selection.size > 0 ? this.samples.filter((s) => this.selection.has(s.id)) : this.filtered);
  stats = $derived(this.project ? datasetStats(this.samples, this.project) : null);
  dirty = $derived(this.draft !== null && this.current !== null && JSON.stringify(this.draft) !== JSON.stringify(this.current));

  private readonly writeChunk: number;

  constructor(db: DatasetDb, options: DatasetStoreOptions = {}) {
    this.db = db;
    this.writeChunk = options.writeChunk ?? 200;
  }

  async load(): Promise<void> {
    try {
      this.project = await this.db.getProject();
      this.samples = sortSamples(await this.db.listSamples());
      this.loaded = true;
      if (this.samples.length > 0 && !this.current) this.select(this.samples[0].id, false);
    } catch (e) {
      this.error = `Could not open the dataset in IndexedDB: ${message(e)}`;
    }
    await this.refreshStorage();
  }

  async refreshStorage(): Promise<void> {
    try {
      this.storage = await this.db.storageInfo();
    } catch {
      this.storage = null;
    }
  }

  async requestPersistence(): Promise<void> {
    await this.db.requestPersistence();
    await this.refreshStorage();
  }

  async saveProject(p: Project): Promise<void> {
    const next = { ...$state.snapshot(p), updatedAt: Date.now() } as Project;
    await this.guard('Saving the project settings', () => this.db.saveProject(next));
    this.project = next;
  }

  async import(files: ImportFile[]): Promise<void> {
    if (!this.project || files.length === 0) return;
    this.busy = `Importing ${files.length} file${files.length === 1 ? '' : 's'}…`;
    this.error = null;
    // Ask once the user has shown intent to keep data here; browsers may grant it silently.
    if (this.storage && !this.storage.persisted) void this.db.requestPersistence().catch(() => false);
    try {
      const existingHashes = new Set(this.samples.flatMap((s) => s.images.map((i) => i.hash)));
      const parsed = await importFiles(files, {
        projectId: this.project.id,
        decodeImage: browserDecodeImage,
        existingHashes,
        existingSamples: this.samples,
      });
      const { stored, storageFull } = await this.writeChunks(parsed.items);
      this.importReport = { counts: parsed.counts, issues: parsed.issues, stored, storageFull };
      if (!this.currentId && this.samples.length > 0) this.select(this.samples[0].id, false);
    } catch (e) {
      this.error = `Import failed: ${message(e)}`;
    } finally {
      this.busy = null;
      await this.refreshStorage();
    }
  }

  private async writeChunks(items: NewSample[]): Promise<{ stored: number; storageFull: string | null }> {
    let stored = 0;
    // The importer attaches each new image's bytes to one sample only; a chunk may hold a
    // sample whose image came with a sample of another chunk, so blobs are regrouped per chunk.
    const bytes = new Map<string, Blob>();
    for (const it of items) for (const [h, b] of it.blobs) bytes.set(h, b);
    for (let i = 0; i < items.length; i += this.writeChunk) {
      const chunk = items.slice(i, i + this.writeChunk).map((it) => ({ sample: it.sample, blobs: new Map<string, Blob>() }));
      for (const it of chunk) for (const im of it.sample.images) if (bytes.has(im.hash)) chunk[0].blobs.set(im.hash, bytes.get(im.hash)!);
      try {
        await this.db.putSamples(chunk);
      } catch (e) {
        if (!(e instanceof StorageFullError)) throw e;
        const full =
          `Browser storage is full: ${stored} of ${items.length} new samples were stored, ` +
          `${items.length - stored} were not. Everything stored before is kept. ` +
          `Free space (delete samples, or other sites' data) and import the rest again.`;
        return { stored, storageFull: full };
      }
      stored += chunk.length;
      this.samples = sortSamples([...this.samples, ...chunk.map((c) => c.sample)]);
    }
    return { stored, storageFull: null };
  }

  // ---- current sample and editor draft ----

  select(id: string | null, saveDraft = true): void {
    if (saveDraft && this.dirty) void this.saveDraft();
    this.currentId = id;
    const s = this.samples.find((x) => x.id === id);
    this.draft = s ? structuredClone(s) : null;
  }

  /** Moves through the filtered list; `delta` +1 next, -1 previous. */
  step(delta: number): void {
    const list = this.filtered;
    if (list.length === 0) return;
    const at = this.currentIndex;
    const next = at < 0 ? 0 : Math.min(list.length - 1, Math.max(0, at + delta));
    this.select(list[next].id);
  }

  async saveDraft(): Promise<boolean> {
    if (!this.draft) return false;
    const snap = $state.snapshot(this.draft) as Sample;
    // A cleared number input binds null; a stage is a whole number from 1.
    const stage = Math.max(1, Math.round(Number(snap.stage) || 1));
    const next: Sample = { ...snap, stage, updatedAt: Date.now() };
    const ok = await this.writeUpdates([next]);
    if (ok && this.currentId === next.id) this.draft = structuredClone(next);
    return ok;
  }

  /** Sets the split of the current sample (keyboard 1/2/3) and saves it with the draft. */
  async assignSplit(split: Split): Promise<void> {
    if (!this.draft) return;
    this.draft.split = split;
    await this.saveDraft();
  }

  // ---- selection and bulk actions ----

  toggleSelected(id: string): void {
    const next = new Set(this.selection);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    this.selection = next;
  }

  selectAllFiltered(): void {
    this.selection = new Set(this.filtered.map((s) => s.id));
  }

  clearSelection(): void {
    this.selection = new Set();
  }

  async bulkRandomSplit(ratios: SplitRatios, seed: number): Promise<void> {
    const targets = this.targets;
    const splits = randomSplit(targets.map((s) => s.id), $state.snapshot(ratios), seed);
    await this.writeUpdates(applySplits(targets, splits));
  }

  async bulkSet(change: { kind?: DataKind; stage?: number; addTag?: string; removeTag?: string }): Promise<void> {
    let updated: Sample[] = this.targets;
    try {
      if (change.kind) updated = setKind(updated, change.kind);
      if (change.stage !== undefined) updated = setStage(updated, change.stage);
      if (change.addTag) updated = addTags(updated, [change.addTag]);
      if (change.removeTag) updated = removeTags(updated, [change.removeTag]);
    } catch (e) {
      this.error = message(e);
      return;
    }
    await this.writeUpdates(updated);
  }

  async deleteTargets(): Promise<void> {
    const ids = this.targets.map((s) => s.id);
    if (ids.length === 0) return;
    await this.dropUndo();
    const ok = await this.guard('Deleting samples', async () => {
      const removed = await this.db.deleteSamples(ids);
      this.undo = { label: `Deleted ${removed.length} sample${removed.length === 1 ? '' : 's'}`, samples: removed };
    });
    if (!ok) return;
    const gone = new Set(ids);
    this.samples = this.samples.filter((s) => !gone.has(s.id));
    this.selection = new Set();
    if (this.currentId && gone.has(this.currentId)) this.select(this.filtered[0]?.id ?? null, false);
  }

  /** Restores the last deletion. Images were kept, so only the sample records go back. */
  async undoDelete(): Promise<void> {
    const entry = this.undo;
    if (!entry) return;
    const ok = await this.guard('Undoing the deletion', () =>
      this.db.putSamples(entry.samples.map((sample) => ({ sample, blobs: new Map<string, Blob>() }))),
    );
    if (!ok) return;
    this.undo = null;
    const restored = new Set(entry.samples.map((s) => s.id));
    this.samples = sortSamples([...this.samples.filter((s) => !restored.has(s.id)), ...entry.samples]);
  }

  /** Forgets the undo entry; only then are images no sample refers to any more removed. */
  async dropUndo(): Promise<void> {
    if (!this.undo) return;
    this.undo = null;
    await this.guard('Removing unused images', () => this.db.purgeOrphanImages());
    await this.refreshStorage();
  }

  async clearAll(): Promise<void> {
    await this.guard('Clearing the dataset', () => this.db.clearAll());
    this.undo = null;
    this.samples = [];
    this.selection = new Set();
    this.select(null, false);
    this.importReport = null;
    await this.load();
  }

  // ---- helpers ----

  private async writeUpdates(updated: Sample[]): Promise<boolean> {
    if (updated.length === 0) return true;
    const ok = await this.guard('Saving', () => this.db.updateSamples(updated));
    if (!ok) return false;
    const byId = new Map(updated.map((s) => [s.id, s]));
    this.samples = this.samples.map((s) => byId.get(s.id) ?? s);
    const cur = this.currentId ? byId.get(this.currentId) : undefined;
    // Keep unsaved editor text when a bulk action touched the current sample.
    if (cur && this.draft) this.draft = { ...this.draft, split: cur.split, kind: cur.kind, stage: cur.stage, tags: [...cur.tags] };
    return true;
  }

  /** Runs a database action; on failure shows the reason, and says so plainly when the disk is full. */
  private async guard(what: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      this.error = null;
      return true;
    } catch (e) {
      this.error =
        e instanceof StorageFullError
          ? `${what} failed: browser storage is full. Nothing already stored was lost; free space and try again.`
          : `${what} failed: ${message(e)}`;
      return false;
    }
  }
}

/** Stable display order: oldest first, then by id, so imports append at the end of the grid. */
function sortSamples(list: Sample[]): Sample[] {
  return list.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const KEY = Symbol('dataset-store');
export function createDatasetStore(db: DatasetDb = openDatasetDb()): DatasetStore {
  return setContext(KEY, new DatasetStore(db));
}
export function useDatasetStore(): DatasetStore {
  return getContext<DatasetStore>(KEY);
}
