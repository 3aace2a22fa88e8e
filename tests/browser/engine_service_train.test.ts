// EngineService training driven directly (no worker) on the tiny model (/models/tiny/, written
// by `npm run fixtures`), with a few synthetic labelled samples written into a fresh IndexedDB
// dataset: start -> step events with finite losses -> pause -> resume -> stop (a checkpoint),
// a second start refused while one runs, PEFT export (file names, parseable JSON and
// safetensors) and import back, and resuming the stopped run from its checkpoint to the end.
// Runs are a handful of steps: SwiftShader is slow.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EngineService } from '../../src/engine/engine_service';
import { SafetensorsFile } from '../../src/engine/load/safetensors';
import type { AdapterFile, RunConfig, TrainEvent, TrainingStatus } from '../../src/lib/api/engine_api';
import { openDatasetDb } from '../../src/lib/dataset/db';
import { sha256Hex } from '../../src/lib/dataset/hash';
import { DATASET_SCHEMA_VERSION, type Sample, type Split } from '../../src/lib/dataset/schema';
import { presetConfig } from '../../src/lib/components/train/presets';

const stamp = Date.now();
const DATASET_DB = `train-test-dataset-${stamp}`;
const CHECKPOINT_DB = `train-test-checkpoints-${stamp}`;

async function solidPng(r: number, g: number, b: number): Promise<Blob> {
  const c = new OffscreenCanvas(16, 16);
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = `rgb(${r},${g},${b})`;
  ctx.fillRect(0, 0, 16, 16);
  return c.convertToBlob({ type: 'image/png' });
}

async function seedDataset(): Promise<void> {
  const db = openDatasetDb(DATASET_DB);
  const project = await db.getProject();
  const colours: [string, number, number, number, Split][] = [
    ['red', 220, 30, 30, 'train'],
    ['green', 30, 200, 40, 'train'],
    ['blue', 30, 40, 220, 'train'],
    ['grey', 128, 128, 128, 'val'],
  ];
  const items = [];
  for (const [i, [name, r, g, b, split]] of colours.entries()) {
    const blob = await solidPng(r, g, b);
    const hash = await sha256Hex(blob);
    const sample: Sample = {
      v: DATASET_SCHEMA_VERSION,
      id: `s${i}`,
      projectId: project.id,
      images: [{ hash, type: 'image/png', width: 16, height: 16, size: blob.size, name: `${name}.png` }],
      turns: [
        { role: 'user', text: '<image>Which colour is it?' },
        { role: 'assistant', text: name },
      ],
      split,
      kind: 'business',
      stage: 1,
      tags: [],
      source: 'test',
      createdAt: stamp + i,
      updatedAt: stamp + i,
    };
    items.push({ sample, blobs: new Map([[hash, blob]]) });
  }
  // One unlabelled train sample: it must be left out, not warned about every step.
  const unlabelled = { ...items[0].sample, id: 's9', turns: [{ role: 'user' as const, text: '<image>Which colour is it?' }] };
  items.push({ sample: unlabelled, blobs: new Map() });
  await db.putSamples(items);
}

/** A tiny run: 3 train samples, batch 1, 2 epochs = 6 steps; high lr so the tiny model moves. */
function tinyRun(id: string): RunConfig {
  const c = presetConfig('format', id);
  return {
    ...c,
    name: `test ${id}`,
    lora: { ...c.lora, r: 2, alpha: 4, dropout: 0 },
    optim: { ...c.optim, lr: 1e-2, warmupSteps: 0, schedule: 'constant' },
    stages: [{ name: 'main', filter: {}, epochs: 2, lr: 1e-2 }],
    gradAccumulation: 1,
    businessToGeneral: 0,
    maxTokens: 256,
    evalEvery: 2,
    checkpointEvery: 0,
  };
}

/** Polls until `pred` holds (the service reports state changes between steps). */
async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const start = performance.now();
  while (!(await pred())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('EngineService training on the tiny model', () => {
  const engine = new EngineService('custom', { checkpointDb: CHECKPOINT_DB });
  const events: TrainEvent[] = [];
  const steps = () => events.filter((e) => e.kind === 'step');
  let exported: AdapterFile[] = [];

  beforeAll(async () => {
    await seedDataset();
  });
  // A failed assertion mid-run must not leave the run going into the next test.
  afterEach(async () => {
    const s = await engine.trainingStatus();
    if (s.status !== 'running' && s.status !== 'paused') return;
    await engine.stopTraining();
    await until('the run to stop after a failure', async () => !['running', 'paused'].includes((await engine.trainingStatus()).status));
  });
  afterAll(async () => {
    await engine.unloadModel().catch(() => undefined);
    for (const name of [DATASET_DB, CHECKPOINT_DB]) indexedDB.deleteDatabase(name);
  });

  it('refuses to train without a model, saying so', async () => {
    await expect(engine.startTraining(tinyRun('r0'), undefined, { dbName: DATASET_DB })).rejects.toThrow(/No model is loaded/);
    expect((await engine.trainingStatus()).status).toBe('idle');
  });

  it('refuses a dataset without labelled train-split samples', async () => {
    await engine.loadModel({ kind: 'builtin', name: 'tiny' }, 'f32');
    await expect(engine.startTraining(tinyRun('r0'), undefined, { dbName: `train-test-empty-${stamp}` })).rejects.toThrow(/no labelled train-split samples/);
    indexedDB.deleteDatabase(`train-test-empty-${stamp}`);
  });

  it('trains: finite step losses, pause holds between steps, resume continues, stop writes a checkpoint', async () => {
    const done = engine.startTraining(tinyRun('r1'), (e) => events.push(e), { dbName: DATASET_DB });
    let final: TrainingStatus | null = null;
    void done.then((s) => (final = s));

    await until('the first step', () => steps().length >= 1 || final !== null).catch((e) => {
      throw new Error(`${(e as Error).message}; events: ${JSON.stringify(events)}`);
    });
    expect(final, JSON.stringify(events)).toBeNull();
    const first = steps()[0];
    expect(first.kind === 'step' && first.totalSteps).toBe(6); // 3 labelled train samples x 2 epochs
    for (const e of steps()) {
      if (e.kind !== 'step') continue;
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(e.loss).toBeGreaterThan(0);
      expect(Number.isFinite(e.gradNorm)).toBe(true);
      expect(e.lr).toBeCloseTo(1e-2);
    }

    // A second start while one runs is refused, naming the running run.
    await expect(engine.startTraining(tinyRun('r2'), undefined, { dbName: DATASET_DB })).rejects.toThrow(/"test r1" is running: only one run at a time/);
    // So are model changes and generation.
    await expect(engine.unloadModel()).rejects.toThrow(/stop it before unloading/);

    await engine.pauseTraining();
    await until('the pause', async () => (await engine.trainingStatus()).status === 'paused');
    const pausedAt = (await engine.trainingStatus()).step;
    const seen = steps().length;
    // Paused between steps: nothing more happens until resume (several step-lengths of waiting).
    await new Promise((r) => setTimeout(r, 1500));
    expect((await engine.trainingStatus()).step).toBe(pausedAt);
    expect(steps().length).toBe(seen);
    expect(events.some((e) => e.kind === 'notice' && /Paused after step/.test(e.message))).toBe(true);

    await engine.resumeTraining();
    await until('a step after resuming', () => steps().length > seen);
    expect((await engine.trainingStatus()).status).toBe('running');

    await engine.stopTraining();
    await until('the run to end', () => final !== null);
    const s = final! as TrainingStatus;
    expect(s.status).toBe('stopped');
    expect(s.runId).toBe('r1');
    expect(s.step).toBeGreaterThan(pausedAt);
    expect(s.step).toBeLessThan(6);
    expect(s.error).toBeNull();
    expect(s.adapter).toMatchObject({ source: 'training', enabled: true, loraModules: 14, fullModules: [] }); // 7 linears x 2 layers
    expect(events.some((e) => e.kind === 'notice' && e.level === 'warning')).toBe(false);

    const history = await engine.trainingHistory();
    expect(history.steps.map((p) => p.step)).toEqual(steps().map((e) => (e.kind === 'step' ? e.step : -1)));
    const cps = (await engine.listCheckpoints()).filter((c) => c.runId === 'r1');
    expect(cps).toHaveLength(1);
    expect(cps[0]).toMatchObject({ runId: 'r1', runName: 'test r1', step: s.step, totalSteps: 6, reason: 'stop' });
  });

  it('exports the adapter as PEFT files that parse, and imports them back', async () => {
    const out = await engine.exportAdapter();
    exported = out.files;
    expect(exported.map((f) => f.name)).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const cfg = JSON.parse(new TextDecoder().decode(exported[0].bytes));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 4, base_model_name_or_path: 'tiny', modules_to_save: null });
    expect(cfg.target_modules).toHaveLength(14);
    expect(cfg.target_modules).toContain('model.text_model.layers.0.self_attn.q_proj');
    const st = await SafetensorsFile.open(new Blob([exported[1].bytes]), { file: 'adapter_model.safetensors' });
    const names = st.header.tensors.map((t) => t.name);
    expect(names).toHaveLength(28);
    expect(names).toContain('base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight');
    const b = st.header.tensors.find((t) => t.name.endsWith('layers.1.mlp.down_proj.lora_B.weight'))!;
    expect(b.shape).toEqual([48, 2]);
    // Trained: lora_B started at zero and moved.
    let moved = false;
    for await (const t of st.tensors()) if (t.name.endsWith('lora_B.weight') && t.data.some((x) => x !== 0)) moved = true;
    expect(moved).toBe(true);

    const info = await engine.importAdapter(exported);
    expect(info).toMatchObject({ source: 'import', enabled: true, loraModules: 14 });
    const again = await engine.exportAdapter();
    expect(again.files[1].bytes).toEqual(exported[1].bytes);

    expect(await engine.setAdapterEnabled(false)).toMatchObject({ enabled: false });
    expect(await engine.setAdapterEnabled(true)).toMatchObject({ enabled: true });
    await expect(engine.importAdapter([exported[1]])).rejects.toThrow(/adapter_config.json is missing/);
  });

  it('resumes the stopped run from its checkpoint and finishes it, keeping the earlier curve', async () => {
    const before = (await engine.listCheckpoints()).find((c) => c.runId === 'r1')!;
    const resumed: TrainEvent[] = [];
    const s = await engine.resumeFromCheckpoint('r1', (e) => resumed.push(e), { dbName: DATASET_DB });
    expect(s.status).toBe('done');
    expect(s.step).toBe(6);
    expect(resumed.some((e) => e.kind === 'notice' && e.message.includes(`Resumed run "test r1" at step ${before.step}`))).toBe(true);
    const newSteps = resumed.filter((e) => e.kind === 'step').map((e) => (e.kind === 'step' ? e.step : -1));
    expect(newSteps).toEqual(Array.from({ length: 6 - before.step }, (_, i) => before.step + 1 + i));
    expect(resumed.some((e) => e.kind === 'eval' && Number.isFinite(e.valLoss))).toBe(true);
    const history = await engine.trainingHistory();
    expect(history.steps.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const cps = (await engine.listCheckpoints()).filter((c) => c.runId === 'r1');
    expect(cps.map((c) => c.reason)).toContain('final');

    await engine.deleteCheckpoints('r1');
    expect((await engine.listCheckpoints()).filter((c) => c.runId === 'r1')).toEqual([]);
    await expect(engine.resumeFromCheckpoint('r1', undefined, { dbName: DATASET_DB })).rejects.toThrow(/No checkpoint of run r1/);
  });

  it('generates with the trained adapter, and unloading frees it', async () => {
    const r = await engine.generate({
      turns: [{ role: 'user', text: '<image>Which colour is it?' }],
      images: [await solidPng(220, 30, 30)],
      maxNewTokens: 2,
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
    });
    expect(r.tokens).toBeGreaterThan(0);
    await engine.unloadModel();
    expect((await engine.trainingStatus()).adapter).toBeNull();
    await expect(engine.exportAdapter()).rejects.toThrow(/No adapter to export/);
  });
});
