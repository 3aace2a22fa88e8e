// Engine store: owns the worker proxy and what the UI shows of the engine.
import { getContext, setContext } from 'svelte';
import type { GpuReport } from '../api/engine_api';
import { startEngine, type EngineProxy } from '../api/engine_client';

export class EngineStore {
  gpu = $state<GpuReport | null>(null);
  error = $state<string | null>(null);
  readonly engine: EngineProxy;
  readonly terminate: () => void;

  constructor() {
    const { engine, terminate } = startEngine();
    this.engine = engine;
    this.terminate = terminate;
  }

  async refreshGpu(): Promise<void> {
    try {
      this.gpu = await this.engine.gpuReport();
      this.error = null;
    } catch (e) {
      this.error = `The engine worker failed to start: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
}

const KEY = Symbol('engine-store');
export function createEngineStore(): EngineStore {
  return setContext(KEY, new EngineStore());
}
export function useEngineStore(): EngineStore {
  return getContext<EngineStore>(KEY);
}
