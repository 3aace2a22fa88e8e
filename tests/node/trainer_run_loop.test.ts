// The run loop with a fake trainer core (a one-parameter least-squares "model", exact in
// float64): stage/epoch/step structure, gradient accumulation, per-stage schedules, eval and
// checkpoint cadence, pause/stop, the NaN guard, a lost device, and resume from a checkpoint
// reproducing the uninterrupted loss curve exactly.
import { describe, expect, it } from 'vitest';
import type { ModelInputs } from '../../src/engine/inputs';
import type { Checkpoint } from '../../src/engine/train/checkpoint';
import { epochOrder } from '../../src/engine/train/mixing';
import { isDeviceLostError, TrainingRun, type CheckpointSink, type TrainerCoreLike, type TrainingRunOptions } from '../../src/engine/train/run_loop';
import type { RunConfig, StepEvent, TrainEvent, TrainerState } from '../../src/engine/train/train_types';
import type { DataKind, Sample, Split } from '../../src/lib/dataset/schema';

function sample(i: number, kind: DataKind = 'business', split: Split = 'train', stage = 1): Sample {
  return { v: 1, id: `s${String(i).padStart(3, '0')}`, projectId: 'p', images: [], turns: [], split, kind, stage, tags: [], source: 'test', createdAt: i, updatedAt: i };
}

/** 10 business of stage 1, 6 of stage 2, 4 general, 3 val. */
function dataset(): Sample[] {
  const xs: Sample[] = [];
  for (let i = 0; i < 10; i++) xs.push(sample(i));
  for (let i = 10; i < 16; i++) xs.push(sample(i, 'business', 'train', 2));
  for (let i = 16; i < 20; i++) xs.push(sample(i, i % 2 ? 'general_caption' : 'general_instruction'));
  for (let i = 20; i < 23; i++) xs.push(sample(i, 'business', 'val'));
  return xs;
}

function config(over: Partial<RunConfig> = {}): RunConfig {
  return {
    id: 'run1',
    name: 'test run',
    seed: 11,
    parts: { textLora: true, connector: 'frozen', visionLora: false },
    lora: { r: 2, alpha: 4, dropout: 0, rsLora: false, targetModules: [] },
    optim: { lr: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: 0, schedule: 'linear', warmupSteps: 1 },
    stages: [
      { name: 'bulk', filter: { stages: [1] }, epochs: 2, lr: 0.1 },
      { name: 'hq', filter: { stages: [2] }, epochs: 2, lr: 0.05 },
    ],
    batchSize: 2,
    gradAccumulation: 2,
    businessToGeneral: 5,
    maxTokens: 100,
    evalEvery: 3,
    checkpointEvery: 2,
    activationCheckpointing: false,
    ...over,
  };
}

/** Sample s### -> one token whose id is its number. */
const data = {
  async prepare(s: Sample): Promise<ModelInputs | null> {
    const n = Number(s.id.slice(1));
    return { inputIds: Int32Array.of(n), labels: Int32Array.of(n), pixelValues: new Float32Array(0), nTiles: 0 };
  },
};

/** loss = mean over the batch of (w - target)^2, target = id % 7; NaN for ids in `nan`. */
class FakeCore implements TrainerCoreLike {
  w = 0;
  t = 0;
  grad = 0;
  micro = 0;
  poisoned = false;
  log: string[] = [];
  constructor(
    /** Sample ids whose loss is NaN (the first time each is seen, with `nanOnce`). */
    readonly nan = new Set<number>(),
    readonly failAt?: { call: number; error: Error },
    readonly opts: { nanOnce?: boolean; nanFromMicro?: number } = {},
  ) {}
  private calls = 0;
  private micros = 0;
  private tick() {
    if (this.failAt && ++this.calls === this.failAt.call) throw this.failAt.error;
  }
  async microStep(batch: ModelInputs[]) {
    this.tick();
    const ids = batch.map((b) => b.inputIds[0]);
    this.log.push(`micro ${ids.join(',')}`);
    this.micros++;
    const hit = ids.filter((i) => this.nan.has(i));
    if (this.opts.nanOnce) for (const i of hit) this.nan.delete(i);
    if (hit.length > 0 || this.micros >= (this.opts.nanFromMicro ?? Infinity)) {
      this.poisoned = true;
      return { loss: NaN, tokens: ids.length, finite: false };
    }
    const loss = ids.reduce((s, i) => s + (this.w - (i % 7)) ** 2, 0) / ids.length;
    this.grad += ids.reduce((s, i) => s + 2 * (this.w - (i % 7)), 0) / ids.length;
    this.micro++;
    return { loss, tokens: ids.length, finite: true };
  }
  async apply(lr: number) {
    this.tick();
    this.log.push(`apply ${lr.toFixed(4)}`);
    const g = this.micro ? this.grad / this.micro : 0;
    const poisoned = this.poisoned;
    this.grad = 0;
    this.micro = 0;
    this.poisoned = false;
    if (poisoned) return { gradNorm: NaN, skipped: true };
    this.w -= lr * g;
    this.t++;
    return { gradNorm: Math.abs(g), skipped: false };
  }
  async evalLoss(batch: ModelInputs[]) {
    const ids = batch.map((b) => b.inputIds[0]);
    this.log.push(`eval ${ids.join(',')}`);
    return { loss: ids.reduce((s, i) => s + (this.w - (i % 7)) ** 2, 0) / ids.length, tokens: ids.length };
  }
  async state(): Promise<TrainerState> {
    return { step: this.t, params: [{ name: 'w', shape: [1], data: Float32Array.of(this.w) }], moments: [{ name: 'w.m', shape: [1], data: new Float32Array(1) }] };
  }
  load(s: TrainerState) {
    // Keep w exactly: the fake stores float64 in a side channel the checkpoint carries.
    this.w = (s as TrainerState & { w64?: number }).w64 ?? s.params[0].data[0];
    this.t = s.step;
  }
  dispose() {}
}

/** A checkpoint sink that structured-clones like IndexedDB, carrying the fake's float64 w. */
class MemorySink implements CheckpointSink {
  saved: Checkpoint[] = [];
  constructor(private readonly core: () => FakeCore | null) {}
  async save(cp: Checkpoint) {
    const copy = structuredClone(cp);
    (copy.state as TrainerState & { w64?: number }).w64 = this.core()!.w;
    this.saved.push(copy);
  }
}

function setup(over: Partial<TrainingRunOptions> = {}, core = new FakeCore()) {
  const events: TrainEvent[] = [];
  let current: FakeCore | null = null;
  const sink = new MemorySink(() => current);
  const run = new TrainingRun({
    config: config(),
    samples: dataset(),
    data,
    createCore: () => (current = core),
    checkpoints: sink,
    onEvent: (e) => events.push(e),
    gpuBytes: () => 1234,
    ...over,
  });
  const steps = () => events.filter((e): e is StepEvent => e.kind === 'step');
  const notices = () => events.filter((e) => e.kind === 'notice').map((e) => (e as { message: string }).message);
  return { run, events, sink, core, steps, notices };
}

describe('TrainingRun structure', () => {
  it('stages in order, epochs in mixing order, a step every gradAccumulation micro-batches, per-stage schedules', async () => {
    const { run, core, steps, events } = setup();
    // Stage 1: 10 business + ceil(10/5) = 2 general = 12 samples -> 6 micro -> 3 steps/epoch, 2 epochs.
    // Stage 2: 6 business, no general in its pool (stage filter 2) -> 3 micro -> 2 steps/epoch.
    expect(run.plans.map((p) => p.steps)).toEqual([6, 4]);
    expect(run.totalSteps).toBe(10);
    const res = await run.run();
    expect(res.status).toBe('done');
    expect(steps().map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(steps().map((s) => s.stage)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(steps().map((s) => s.epoch)).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 1, 1]);

    // The micro-batches are the mixing order, chunked by batchSize.
    const micro = core.log.filter((l) => l.startsWith('micro')).map((l) => l.slice(6).split(',').map((x) => `s${x.padStart(3, '0')}`));
    const pool1 = run.plans[0].pool;
    expect(micro.slice(0, 6).flat()).toEqual(epochOrder(pool1, 5, 11, 0, 0));
    expect(micro.slice(6, 12).flat()).toEqual(epochOrder(pool1, 5, 11, 0, 1));
    expect(micro.slice(12, 15).flat()).toEqual(epochOrder(run.plans[1].pool, 5, 11, 1, 0));
    // Two micro-batches per apply, except the last step of an odd epoch (stage 2: 3 micro -> 2 + 1).
    const pattern = core.log.filter((l) => !l.startsWith('eval')).map((l) => l[0]).join('');
    expect(pattern).toBe('mmammammammammamma' + 'mmamammama');

    // Linear schedule with 1 warmup step, restarting per stage at the stage's lr.
    const lrs = steps().map((s) => s.lr);
    expect(lrs[0]).toBe(0); // warmup step 0
    expect(lrs[1]).toBeCloseTo(0.1, 12);
    expect(lrs[5]).toBeCloseTo(0.1 * (1 - 4 / 5), 12);
    expect(lrs[6]).toBe(0);
    expect(lrs[7]).toBeCloseTo(0.05, 12);
    expect(steps()[0]).toMatchObject({ totalSteps: 10, gpuBytes: 1234 });
    expect(steps().every((s) => s.tokensPerSecond > 0 && s.etaSeconds >= 0)).toBe(true);

    // Validation every 3 steps and at the end, on val samples only.
    expect(events.filter((e) => e.kind === 'eval').map((e) => e.step)).toEqual([3, 6, 9, 10]);
    expect(core.log.filter((l) => l.startsWith('eval')).join(' ')).toMatch(/^eval 20,21 eval 22/);
  });

  it('checkpoints every checkpointEvery steps and at the end, with the data position', async () => {
    const { run, sink } = setup();
    await run.run();
    expect(sink.saved.map((c) => [c.step, c.reason])).toEqual([
      [2, 'periodic'],
      [4, 'periodic'],
      [6, 'periodic'],
      [8, 'periodic'],
      [10, 'final'],
    ]);
    // Step 6 ends stage 1: the position already points at stage 2, epoch 0.
    expect(sink.saved[2].position).toMatchObject({ stage: 1, epoch: 0, micro: 0 });
    expect(sink.saved[0].position).toMatchObject({ stage: 0, epoch: 0, micro: 4 });
    expect(sink.saved[0].history.steps.map((s) => s.step)).toEqual([1, 2]);
    expect(sink.saved[4].history.evals.map((e) => e.step)).toEqual([3, 6, 9, 10]);
  });
});

describe('resume', () => {
  it('a run rebuilt from a checkpoint reproduces the uninterrupted loss curve exactly', async () => {
    const full = setup();
    await full.run.run();
    const want = full.run.history.steps.map((s) => [s.step, s.loss, s.lr]);

    for (const stopAfter of [1, 5, 7]) {
      const first = setup();
      const stopper = (e: TrainEvent) => {
        if (e.kind === 'step' && e.step === stopAfter) run1.stop();
      };
      const run1 = new TrainingRun({ config: config(), samples: dataset(), data, createCore: () => first.core, checkpoints: first.sink, onEvent: stopper });
      (first.sink as unknown as { core: () => FakeCore }).core = () => first.core;
      const r1 = await run1.run();
      expect(r1.status).toBe('stopped');
      const cp = first.sink.saved.at(-1)!;
      expect(cp.step).toBe(stopAfter);

      // Fresh everything: a new core, a new run object, the checkpoint as IndexedDB would return it.
      const fresh = new FakeCore();
      const sink2 = new MemorySink(() => fresh);
      const run2 = new TrainingRun({ config: config(), samples: dataset(), data, createCore: () => fresh, checkpoints: sink2, resumeFrom: structuredClone(cp) });
      const r2 = await run2.run();
      expect(r2.status).toBe('done');
      expect(run2.history.steps.map((s) => [s.step, s.loss, s.lr])).toEqual(want);
      expect(run2.history.evals).toEqual(full.run.history.evals);
    }
  });

  it('refuses a checkpoint of another run', () => {
    const cp = { config: { ...config(), id: 'other' } } as Checkpoint;
    expect(() => new TrainingRun({ config: config(), samples: dataset(), data, createCore: () => new FakeCore(), resumeFrom: cp })).toThrow(
      /checkpoint belongs to run other/,
    );
  });
});

describe('controls', () => {
  it('pause holds the run between steps until resume', async () => {
    const h = setup();
    let pausedAt = -1;
    const run = new TrainingRun({
      config: config(),
      samples: dataset(),
      data,
      createCore: () => h.core,
      onEvent: (e) => {
        if (e.kind === 'step' && e.step === 2) {
          run.pause();
          pausedAt = h.core.log.length;
        }
      },
    });
    const done = run.run();
    await new Promise((r) => setTimeout(r, 20));
    expect(run.status).toBe('paused');
    expect(h.core.log.length).toBe(pausedAt); // nothing ran while paused
    run.resume();
    expect((await done).status).toBe('done');
    expect(run.stepsDone).toBe(10);
  });

  it('stop while paused checkpoints and ends', async () => {
    const h = setup();
    const run = new TrainingRun({
      config: config(),
      samples: dataset(),
      data,
      createCore: () => h.core,
      checkpoints: h.sink,
      onEvent: (e) => e.kind === 'step' && e.step === 3 && run.pause(),
    });
    (h.sink as unknown as { core: () => FakeCore }).core = () => h.core;
    const done = run.run();
    await new Promise((r) => setTimeout(r, 20));
    run.stop();
    const res = await done;
    expect(res).toMatchObject({ status: 'stopped', step: 3, lastCheckpoint: 3 });
    expect(h.sink.saved.at(-1)!.reason).toBe('stop');
  });
});

describe('NaN guard', () => {
  it('a non-finite step is skipped and reported; the run goes on', async () => {
    const order = epochOrder(setup().run.plans[0].pool, 5, 11, 0, 0);
    const bad = Number(order[0].slice(1)); // in the first micro-batch only
    const h = setup({}, new FakeCore(new Set([bad]), undefined, { nanOnce: true }));
    const res = await h.run.run();
    expect(res.status).toBe('done');
    expect(h.notices().some((m) => /Step 1: the loss or a gradient was not finite \(NaN\/Inf\); this update was skipped/.test(m))).toBe(true);
    expect(h.steps().map((s) => s.step)[0]).toBe(2);
    expect(h.core.t).toBe(9); // 10 steps, one skipped
  });

  it('3 consecutive non-finite steps stop the run with a clear message; the last checkpoint is kept', async () => {
    // NaN from the 5th micro-batch on, i.e. from step 3 (2 micro-batches per step).
    const h = setup({}, new FakeCore(new Set(), undefined, { nanFromMicro: 5 }));
    const res = await h.run.run();
    expect(res.status).toBe('failed');
    expect(res.message).toMatch(/^Stopped: 3 consecutive steps \(3, 4, 5\) had non-finite loss or gradients.*checkpoint at step 2 is kept.*Lower the learning rate/);
    expect(h.sink.saved.map((c) => c.step)).toEqual([2]);
    expect(h.events.filter((e) => e.kind === 'notice' && e.level === 'error')).toHaveLength(1);
  });
});

describe('lost GPU device', () => {
  it('the deviceLost promise stops the run cleanly, naming the kept checkpoint', async () => {
    let lose!: (info: unknown) => void;
    const deviceLost = new Promise((r) => (lose = r));
    const h = setup({ deviceLost });
    const run = new TrainingRun({
      config: config(),
      samples: dataset(),
      data,
      createCore: () => h.core,
      checkpoints: h.sink,
      deviceLost,
      onEvent: (e) => e.kind === 'step' && e.step === 3 && lose({ reason: 'unknown', message: 'GPU driver reset' }),
    });
    (h.sink as unknown as { core: () => FakeCore }).core = () => h.core;
    const res = await run.run();
    expect(res.status).toBe('failed');
    expect(res.message).toMatch(/The GPU device was lost at step 3 \(unknown: GPU driver reset\).*checkpoint at step 2 is kept/);
    expect(res.lastCheckpoint).toBe(2);
    expect(h.sink.saved.map((c) => c.step)).toEqual([2]); // no write after the loss
  });

  it('a device-lost error from the core stops the run the same way', async () => {
    const core = new FakeCore(new Set(), { call: 4, error: new Error('Device was lost: the GPU process crashed') });
    const h = setup({}, core);
    const res = await h.run.run();
    expect(res.status).toBe('failed');
    expect(res.message).toMatch(/The GPU device was lost at step 1 .*No checkpoint was written yet/);
    expect(isDeviceLostError(new Error('GPUDevice was destroyed'))).toBe(true);
    expect(isDeviceLostError(new Error('shape mismatch'))).toBe(false);
  });

  it('any other error fails the run with its message', async () => {
    const h = setup({}, new FakeCore(new Set(), { call: 2, error: new Error('out of memory') }));
    const res = await h.run.run();
    expect(res).toMatchObject({ status: 'failed', message: 'Training stopped at step 0 by an error: out of memory' });
  });
});

describe('config checks', () => {
  it('names the bad field', () => {
    expect(() => setup({ config: config({ gradAccumulation: 0 }) })).toThrow(/run config "test run": gradAccumulation must be a positive integer, got 0/);
    expect(() => setup({ config: config({ stages: [] }) })).toThrow(/no stages/);
  });

  it('a run with nothing to train fails with a message', async () => {
    const h = setup({ config: config({ stages: [{ name: 'none', filter: { tags: ['nope'] }, epochs: 1, lr: 1 }] }) });
    const res = await h.run.run();
    expect(res.status).toBe('failed');
    expect(res.message).toMatch(/nothing to train/);
  });
});
