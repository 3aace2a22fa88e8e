// Training store: the run form's draft config, and what the UI shows of a training run: its
// status, the latest step's numbers, the loss curves, notices, checkpoints and the adapter.
// Every number comes from the worker's events; the store only keeps them (no math here).
// It talks to the engine through the engine store's worker proxy, so there is one worker.
import { getContext, setContext } from 'svelte';
import * as Comlink from 'comlink';
import type {
  AdapterFile,
  AdapterInfo,
  CheckpointMeta,
  EvalPoint,
  LossPoint,
  RunConfig,
  RunStatus,
  TrainEvent,
  TrainingDataSource,
  TrainingStatus,
} from '../api/engine_api';
import type { EngineStore } from './engine.svelte';
import type { NoticeEvent, StepEvent } from '../../engine/train/train_types';
import { presetConfig, type PresetId } from '../components/train/presets';

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Notices kept on screen; a long run with a bad sample could otherwise pile up thousands. */
const MAX_NOTICES = 200;

export class TrainingStore {
  /** The run the form edits; a start sends a snapshot of it. */
  config = $state<RunConfig>(presetConfig('overfit'));
  preset = $state<PresetId>('overfit');

  status = $state<RunStatus>('idle');
  runId = $state<string | null>(null);
  runName = $state<string | null>(null);
  /** The run's eval measures this split (from its config). */
  evalSplit = $state<'val' | 'train'>('val');
  /** The latest step event, or null before the first. */
  last = $state.raw<StepEvent | null>(null);
  trainCurve = $state.raw<LossPoint[]>([]);
  evalCurve = $state.raw<EvalPoint[]>([]);
  notices = $state.raw<NoticeEvent[]>([]);
  /** Why the run could not start, or failed. */
  error = $state<string | null>(null);

  checkpoints = $state.raw<CheckpointMeta[]>([]);
  adapter = $state.raw<AdapterInfo | null>(null);
  /** An adapter action (export, import, on/off) in progress, or null. */
  adapterBusy = $state<string | null>(null);
  adapterError = $state<string | null>(null);

  active = $derived(this.status === 'running' || this.status === 'paused');

  constructor(
    private readonly engineStore: EngineStore,
    /** Where the worker reads samples from (the app's dataset database unless a test says otherwise). */
    readonly data: TrainingDataSource = {},
  ) {}

  private get engine() {
    return this.engineStore.engine;
  }

  applyPreset(id: PresetId): void {
    this.preset = id;
    this.config = presetConfig(id);
  }

  /** Starts the form's run under a fresh id (so its checkpoints never mix with an earlier run's). */
  start(): Promise<void> {
    const run = { ...($state.snapshot(this.config) as RunConfig), id: presetConfig(this.preset).id };
    return this.drive(run, (onEvent) => this.engine.startTraining(run, onEvent, this.data));
  }

  /** Continues a stored run from its latest checkpoint (e.g. after a reload or a closed tab). */
  resumeFrom(cp: CheckpointMeta): Promise<void> {
    return this.drive(null, (onEvent) => this.engine.resumeFromCheckpoint(cp.runId, onEvent, this.data), cp);
  }

  private async drive(
    run: RunConfig | null,
    call: (onEvent: (e: TrainEvent) => void) => Promise<TrainingStatus>,
    from?: CheckpointMeta,
  ): Promise<void> {
    if (this.active) {
      this.error = `Run "${this.runName}" is ${this.status}: only one run at a time. Stop it first.`;
      return;
    }
    this.status = 'running';
    this.runId = run?.id ?? from?.runId ?? null;
    this.runName = run?.name ?? from?.runName ?? null;
    this.evalSplit = run?.evalSplit ?? 'val';
    this.last = null;
    this.trainCurve = [];
    this.evalCurve = [];
    this.notices = [];
    this.error = null;
    let synced = false;
    const onEvent = Comlink.proxy((e: TrainEvent) => {
      this.onEvent(e);
      // A resumed run starts with the curve its checkpoint carried: fetch it once the run exists.
      if (!synced) {
        synced = true;
        void this.syncHistory();
      }
    });
    try {
      const s = await call(onEvent);
      this.show(s);
    } catch (e) {
      this.error = message(e);
      await this.refreshStatus();
    } finally {
      await this.refreshCheckpoints();
      await this.engineStore.refreshMemory();
    }
  }

  private onEvent(e: TrainEvent): void {
    if (e.kind === 'step') {
      this.last = e;
      this.trainCurve = [...this.trainCurve, { step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm }];
    } else if (e.kind === 'eval') {
      this.evalCurve = [...this.evalCurve, { step: e.step, valLoss: e.valLoss }];
    } else {
      this.notices = [...this.notices, e].slice(-MAX_NOTICES);
      // Pausing and resuming take effect between steps and are announced by a notice: ask
      // the worker for the status then rather than parsing the message.
      void this.refreshStatus();
    }
  }

  /** Merges the run's stored history (earlier points of a resumed run) in front of the live points. */
  private async syncHistory(): Promise<void> {
    try {
      const [h, s] = await Promise.all([this.engine.trainingHistory(), this.engine.trainingStatus()]);
      const firstLive = this.trainCurve[0]?.step ?? Infinity;
      const firstLiveEval = this.evalCurve[0]?.step ?? Infinity;
      this.trainCurve = [...h.steps.filter((p) => p.step < firstLive), ...this.trainCurve];
      this.evalCurve = [...h.evals.filter((p) => p.step < firstLiveEval), ...this.evalCurve];
      this.runName = s.runName;
    } catch {
      // The curve is informational; the live points still show.
    }
  }

  private show(s: TrainingStatus): void {
    this.status = s.status;
    this.runId = s.runId;
    this.runName = s.runName;
    this.adapter = s.adapter;
    if (s.error) this.error = s.error;
  }

  async refreshStatus(): Promise<void> {
    try {
      const s = await this.engine.trainingStatus();
      this.status = s.status;
      this.adapter = s.adapter;
    } catch {
      // The worker failed; the engine store reports that.
    }
  }

  async pause(): Promise<void> {
    await this.control(() => this.engine.pauseTraining());
  }

  async resume(): Promise<void> {
    await this.control(() => this.engine.resumeTraining());
  }

  async stop(): Promise<void> {
    await this.control(() => this.engine.stopTraining());
  }

  private async control(f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      this.error = message(e);
    }
  }

  async refreshCheckpoints(): Promise<void> {
    try {
      this.checkpoints = await this.engine.listCheckpoints();
    } catch (e) {
      this.error = `Could not list checkpoints: ${message(e)}`;
    }
  }

  async deleteCheckpoints(runId: string): Promise<void> {
    await this.control(() => this.engine.deleteCheckpoints(runId));
    await this.refreshCheckpoints();
  }

  /** The adapter's PEFT files, or null (adapterError says why). */
  async exportAdapter(): Promise<AdapterFile[] | null> {
    return this.adapterAction('Exporting', async () => (await this.engine.exportAdapter()).files);
  }

  async importAdapter(files: File[]): Promise<void> {
    await this.adapterAction('Importing', async () => {
      const plain: AdapterFile[] = [];
      for (const f of files) plain.push({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
      this.adapter = await this.engine.importAdapter(Comlink.transfer(plain, plain.map((p) => p.bytes.buffer)));
      await this.engineStore.refreshMemory();
    });
  }

  async setAdapterEnabled(on: boolean): Promise<void> {
    await this.adapterAction(on ? 'Switching on' : 'Switching off', async () => {
      this.adapter = await this.engine.setAdapterEnabled(on);
    });
  }

  private async adapterAction<T>(what: string, f: () => Promise<T>): Promise<T | null> {
    this.adapterBusy = what;
    this.adapterError = null;
    try {
      return await f();
    } catch (e) {
      this.adapterError = `${what} the adapter failed: ${message(e)}`;
      return null;
    } finally {
      this.adapterBusy = null;
    }
  }
}

const KEY = Symbol('training-store');
export function createTrainingStore(engine: EngineStore, data?: TrainingDataSource): TrainingStore {
  return setContext(KEY, new TrainingStore(engine, data));
}
export function useTrainingStore(): TrainingStore {
  return getContext<TrainingStore>(KEY);
}
