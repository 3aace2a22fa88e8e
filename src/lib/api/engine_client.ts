// UI side of the engine API: starts the worker once and hands out the typed comlink proxy.
import * as Comlink from 'comlink';
import type { EngineApi } from './engine_api';

export type EngineProxy = Comlink.Remote<EngineApi>;

export function startEngine(): { engine: EngineProxy; terminate: () => void } {
  const worker = new Worker(new URL('../../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  const engine = Comlink.wrap<EngineApi>(worker);
  return { engine, terminate: () => worker.terminate() };
}
