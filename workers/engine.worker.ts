// The engine worker: everything that touches the GPU runs here, behind one comlink API.
import * as Comlink from 'comlink';
import type { EngineApi, GpuReport } from '../src/lib/api/engine_api';
import { probeGpu } from '../src/lib/gpu/gpu_report';

const api: EngineApi = {
  async gpuReport(): Promise<GpuReport> {
    return probeGpu(self.navigator?.gpu);
  },
};

Comlink.expose(api);
