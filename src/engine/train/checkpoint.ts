// Training checkpoints in IndexedDB: everything a run needs to continue exactly where it was
// (trainable tensors, optimiser moments, data order and position, step, RunConfig, loss history).
//
// Written with the raw IndexedDB API, not idb-keyval (TRAPS.md): a checkpoint must survive a
// crash, which needs `durability: 'strict'` (the default may report `complete` before the data
// reaches the disk), and idb-keyval cannot ask for it. Each checkpoint is ONE transaction over
// two stores, the big record and a small metadata record for listing (so listing never loads
// tensors), together with the pruning of older checkpoints of the run: a crash or quota error
// mid-write leaves the previous checkpoints exactly as they were.
import type { NamedArray, RunConfig, TrainerState } from './train_types';

/** Where the data stream stands: the next micro-batch to train. */
export interface DataPosition {
  stage: number; // index into RunConfig.stages
  epoch: number; // 0-based within the stage
  micro: number; // next micro-batch of the epoch
  /** The epoch's sample order, kept so a resumed run trains the same samples even if the pool changed. */
  order: string[];
}

export interface LossPoint {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

export interface EvalPoint {
  step: number;
  valLoss: number;
}

export interface Checkpoint {
  runId: string;
  /** Optimiser steps the run loop has taken (skipped non-finite steps included). */
  step: number;
  totalSteps: number;
  createdAt: number;
  reason: 'periodic' | 'stop' | 'final';
  config: RunConfig;
  state: TrainerState;
  position: DataPosition;
  history: { steps: LossPoint[]; evals: EvalPoint[] };
}

export interface CheckpointMeta {
  runId: string;
  runName: string;
  step: number;
  totalSteps: number;
  createdAt: number;
  reason: Checkpoint['reason'];
  /** Bytes of tensor data (params + moments). */
  bytes: number;
}

export interface SaveOptions {
  /** Checkpoints of this run to keep, the new one included (older ones are deleted); default 2. */
  keepLast?: number;
}

export interface CheckpointStoreOptions {
  /** Test hook: runs inside the write transaction after its requests are issued; a throw aborts it. */
  beforeCommit?: (tx: IDBTransaction) => void;
}

const DB_VERSION = 1;
const DATA = 'checkpoints';
const META = 'meta';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = (ev) => reject((ev.target as IDBRequest | null)?.error ?? tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException('The checkpoint write was aborted', 'AbortError'));
  });
}

const runRange = (runId: string) => IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]);
const tensorBytes = (xs: readonly NamedArray[]) => xs.reduce((n, x) => n + x.data.byteLength, 0);

export class CheckpointStore {
  private constructor(
    private readonly db: IDBDatabase,
    private readonly opts: CheckpointStoreOptions,
  ) {}

  static open(dbName = 'vlm-workbench-checkpoints', opts: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(dbName, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        // Keys are [runId, step]: a run's checkpoints sort by step.
        if (!db.objectStoreNames.contains(DATA)) db.createObjectStore(DATA);
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
      };
      r.onsuccess = () => resolve(new CheckpointStore(r.result, opts));
      r.onerror = () => reject(new Error(`checkpoints: could not open IndexedDB database "${dbName}": ${r.error?.message}`));
      r.onblocked = () => reject(new Error(`checkpoints: database "${dbName}" is blocked by another tab holding an older version open`));
    });
  }

  /** Writes the checkpoint and prunes the run's older ones, all in one strict-durability transaction. */
  async save(cp: Checkpoint, opts: SaveOptions = {}): Promise<void> {
    const keep = Math.max(1, opts.keepLast ?? 2);
    const tx = this.db.transaction([DATA, META], 'readwrite', { durability: 'strict' });
    const committed = done(tx);
    try {
      const key = [cp.runId, cp.step];
      const meta: CheckpointMeta = {
        runId: cp.runId,
        runName: cp.config.name,
        step: cp.step,
        totalSteps: cp.totalSteps,
        createdAt: cp.createdAt,
        reason: cp.reason,
        bytes: tensorBytes(cp.state.params) + tensorBytes(cp.state.moments),
      };
      tx.objectStore(DATA).put(cp, key);
      tx.objectStore(META).put(meta, key);
      const keys = (await req(tx.objectStore(META).getAllKeys(runRange(cp.runId)))) as [string, number][];
      const older = keys.filter((k) => k[1] !== cp.step).sort((a, b) => a[1] - b[1]);
      for (const k of older.slice(0, Math.max(0, older.length + 1 - keep))) {
        tx.objectStore(DATA).delete(k);
        tx.objectStore(META).delete(k);
      }
      this.opts.beforeCommit?.(tx);
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // already finished
      }
      committed.catch(() => undefined);
      throw new Error(`checkpoint of run "${cp.config.name}" at step ${cp.step} was not saved (earlier checkpoints are intact): ${(e as Error).message}`, { cause: e });
    }
    try {
      await committed;
    } catch (e) {
      const name = (e as DOMException | null)?.name;
      const why = name === 'QuotaExceededError' ? "the browser's storage for this site is full" : String((e as Error | null)?.message ?? e);
      throw new Error(`checkpoint of run "${cp.config.name}" at step ${cp.step} was not saved (earlier checkpoints are intact): ${why}`, { cause: e });
    }
  }

  /** Checkpoint metadata, of one run or of all, by run then step. */
  async list(runId?: string): Promise<CheckpointMeta[]> {
    const tx = this.db.transaction(META, 'readonly');
    const all = (await req(tx.objectStore(META).getAll(runId === undefined ? undefined : runRange(runId)))) as CheckpointMeta[];
    return all;
  }

  /** A run's checkpoint at `step`, or its latest when `step` is omitted; undefined if none. */
  async load(runId: string, step?: number): Promise<Checkpoint | undefined> {
    const tx = this.db.transaction([DATA, META], 'readonly');
    let key: [string, number] | undefined;
    if (step === undefined) {
      const keys = (await req(tx.objectStore(META).getAllKeys(runRange(runId)))) as [string, number][];
      key = keys[keys.length - 1];
      if (!key) return undefined;
    } else {
      key = [runId, step];
    }
    return (await req(tx.objectStore(DATA).get(key))) as Checkpoint | undefined;
  }

  /** Deletes one checkpoint, or every checkpoint of the run when `step` is omitted. */
  async delete(runId: string, step?: number): Promise<void> {
    const tx = this.db.transaction([DATA, META], 'readwrite', { durability: 'strict' });
    const committed = done(tx);
    const range = step === undefined ? runRange(runId) : IDBKeyRange.only([runId, step]);
    tx.objectStore(DATA).delete(range);
    tx.objectStore(META).delete(range);
    await committed;
  }

  close(): void {
    this.db.close();
  }
}
