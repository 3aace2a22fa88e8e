// Checkpoint store in real IndexedDB: round trip of tensors and data position, latest/by-step
// loading, pruning, strict durability, and a failed write leaving earlier checkpoints intact.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore, type Checkpoint } from '../../src/engine/train/checkpoint';
import type { RunConfig } from '../../src/engine/train/train_types';

const DB = 'trainer-checkpoint-test';

function config(id: string): RunConfig {
  return {
    id,
    name: `run ${id}`,
    seed: 1,
    parts: { textLora: true, connector: 'frozen', visionLora: false },
    lora: { r: 2, alpha: 4, dropout: 0, rsLora: false, targetModules: ['q_proj'] },
    optim: { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 1, schedule: 'constant', warmupSteps: 0 },
    stages: [{ name: 's', filter: {}, epochs: 1, lr: 1e-3 }],
    batchSize: 1,
    gradAccumulation: 1,
    businessToGeneral: 0,
    maxTokens: 512,
    evalEvery: 0,
    checkpointEvery: 1,
    activationCheckpointing: false,
  };
}

function checkpoint(runId: string, step: number): Checkpoint {
  const a = Float32Array.from({ length: 6 }, (_, i) => step + i / 10);
  return {
    runId,
    step,
    totalSteps: 10,
    createdAt: 1000 + step,
    reason: 'periodic',
    config: config(runId),
    state: {
      step,
      params: [{ name: 'base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight', shape: [2, 3], data: a }],
      moments: [{ name: 'base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight.m', shape: [2, 3], data: a.map((x) => -x) }],
    },
    position: { stage: 0, epoch: 1, micro: step, order: ['s2', 's0', 's1'] },
    history: { steps: [{ step, loss: 1 / step, lr: 1e-3, gradNorm: 0.5 }], evals: [] },
  };
}

let store: CheckpointStore;
beforeEach(async () => {
  store = await CheckpointStore.open(DB);
  for (const m of await store.list()) await store.delete(m.runId);
});
afterEach(() => store.close());

describe('CheckpointStore', () => {
  it('round-trips tensors, position and history; load() without a step gives the latest', async () => {
    await store.save(checkpoint('r1', 1), { keepLast: 5 });
    await store.save(checkpoint('r1', 2), { keepLast: 5 });
    await store.save(checkpoint('r2', 7), { keepLast: 5 });
    const latest = await store.load('r1');
    expect(latest).toEqual(checkpoint('r1', 2));
    expect(latest!.state.params[0].data).toBeInstanceOf(Float32Array);
    expect(await store.load('r1', 1)).toEqual(checkpoint('r1', 1));
    expect(await store.load('nope')).toBeUndefined();
    const metas = await store.list('r1');
    expect(metas.map((m) => m.step)).toEqual([1, 2]);
    expect(metas[0]).toMatchObject({ runName: 'run r1', bytes: 48, reason: 'periodic', totalSteps: 10 });
    expect((await store.list()).length).toBe(3);
  });

  it('keeps the last N checkpoints of a run and leaves other runs alone', async () => {
    await store.save(checkpoint('other', 1));
    for (let s = 1; s <= 5; s++) await store.save(checkpoint('r', s), { keepLast: 2 });
    expect((await store.list('r')).map((m) => m.step)).toEqual([4, 5]);
    expect(await store.load('r', 3)).toBeUndefined();
    expect((await store.list('other')).length).toBe(1);
    await store.delete('r', 4);
    expect((await store.list('r')).map((m) => m.step)).toEqual([5]);
  });

  it('writes with strict durability, in one transaction over both stores', async () => {
    const seen: IDBTransaction[] = [];
    const s2 = await CheckpointStore.open(DB, { beforeCommit: (tx) => seen.push(tx) });
    try {
      await s2.save(checkpoint('d', 1));
      expect(seen).toHaveLength(1);
      expect(seen[0].durability).toBe('strict');
      expect(Array.from(seen[0].objectStoreNames).sort()).toEqual(['checkpoints', 'meta']);
    } finally {
      s2.close();
    }
  });

  it('a write that fails midway keeps the previous checkpoints (and does not prune them)', async () => {
    await store.save(checkpoint('c', 1));
    await store.save(checkpoint('c', 2));
    const failing = await CheckpointStore.open(DB, {
      beforeCommit: () => {
        throw new Error('simulated crash');
      },
    });
    try {
      await expect(failing.save(checkpoint('c', 3), { keepLast: 1 })).rejects.toThrow(
        /checkpoint of run "run c" at step 3 was not saved \(earlier checkpoints are intact\): simulated crash/,
      );
    } finally {
      failing.close();
    }
    expect((await store.list('c')).map((m) => m.step)).toEqual([1, 2]);
    expect(await store.load('c')).toEqual(checkpoint('c', 2));
  });
});
