// The one typed API between the UI and the engine worker (workers/engine.worker.ts).
// The worker holds no UI state; the UI does no math. Every call crosses through comlink.

/** What the browser's WebGPU adapter is, as the engine sees it. */
export interface GpuReport {
  available: boolean;
  /** Why WebGPU is unavailable and what to do about it; set when `available` is false. */
  reason?: string;
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  features: string[];
  limits: Record<string, number>;
  /** tfjs backend the engine runs on once initialised ('webgpu'), or null before. */
  backend: string | null;
}

export interface EngineApi {
  /** Probe the WebGPU adapter from inside the worker. Never throws: a missing GPU is a report. */
  gpuReport(): Promise<GpuReport>;
}
