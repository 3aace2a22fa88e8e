// The engine's tfjs runtime: one place that selects the WebGPU backend, decides its flags, and
// measures GPU memory. Touches no DOM API: it runs in a page, a module worker, or Node with a
// WebGPU binding.
//
// Decisions made here (see /work/shared/TRAPS.md):
// - WEBGPU_CPU_FORWARD = false. By default tfjs-backend-webgpu runs ops whose inputs are all
//   CPU-resident and smaller than 1000 elements on the CPU. For the engine that means a hidden
//   GPU->CPU->GPU round trip in the middle of a decode step, and for benchmarks it means stock
//   and custom ops would not be compared like with like. Everything runs on the GPU.
// - tfjs-webgpu routes int32 tensors through f32 in every stock kernel (gather, slice, concat,
//   add, floorDiv...): values with |v| > 2^24 are rounded. Packed quantized weights (q8/q4
//   words) must therefore only ever be reshaped (free, no kernel) or read by our own programs.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

/**
 * Peak of live tensor bytes, sampled after every GPU program the backend runs (stock kernels
 * and ours alike go through `runWebGPUProgram`). Lives at module level because the tfjs
 * backend it watches is itself process-global.
 */
const peak = { bytes: 0, installed: false };

/** Selects and initialises the tfjs WebGPU backend; idempotent. Throws with the reason if WebGPU is unavailable. */
export async function initEngineBackend(): Promise<WebGPUBackend> {
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (tf.getBackend() !== 'webgpu') {
    let ok = false;
    try {
      ok = await tf.setBackend('webgpu');
    } catch (e) {
      throw new Error(`engine/backend.ts: tfjs could not start its WebGPU backend: ${(e as Error).message}`);
    }
    if (!ok) {
      throw new Error(
        'engine/backend.ts: tfjs could not start its WebGPU backend (no adapter: is WebGPU enabled in this browser?)',
      );
    }
  }
  await tf.ready();
  const backend = webgpuBackend();
  installPeakSampler(backend);
  installErrorWatch(backend);
  return backend;
}

/**
 * WebGPU reports validation errors (an invalid pipeline, too many storage buffers in one
 * shader: SwiftShader allows 8, and a tfjs addN/concat over more inputs exceeds it) only as
 * `uncapturederror` events; the work is skipped and later reads return stale numbers with no
 * exception. The engine records the first such error so that callers (a training step, a
 * generation) can check and stop with the reason instead of continuing on garbage.
 */
const gpuErrors: string[] = [];
let errorWatchInstalled = false;

function installErrorWatch(backend: WebGPUBackend): void {
  if (errorWatchInstalled) return;
  errorWatchInstalled = true;
  backend.device.addEventListener('uncapturederror', (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    if (gpuErrors.length < 16) gpuErrors.push(`${e.constructor?.name ?? 'GPUError'}: ${e.message}`);
  });
}

/** GPU errors seen since the last call (and clears them). Empty when all work ran. */
export function takeGpuErrors(): string[] {
  return gpuErrors.splice(0, gpuErrors.length);
}

/** Throws with the first GPU error seen since the last check, naming where it was noticed. */
export function throwIfGpuError(where: string): void {
  const errs = takeGpuErrors();
  if (errs.length > 0) {
    throw new Error(`${where}: the GPU rejected work (${errs.length} error${errs.length > 1 ? 's' : ''}), results would be wrong: ${errs[0]}`);
  }
}

/** The active WebGPUBackend (for runWebGPUProgram); throws if initEngineBackend has not run. */
export function webgpuBackend(): WebGPUBackend {
  if (tf.getBackend() !== 'webgpu') {
    throw new Error(`engine/backend.ts: active tfjs backend is '${tf.getBackend()}', expected 'webgpu'; call initEngineBackend() first`);
  }
  return tf.backend() as WebGPUBackend;
}

/** GPU bytes held by live tensors right now (tfjs accounting, weights included). */
export function gpuMemoryBytes(): number {
  return tf.memory().numBytes;
}

/**
 * GPU bytes in buffers tfjs has created, including its pool of released buffers kept for
 * reuse: what the process actually holds on the device, always >= gpuMemoryBytes().
 */
export function gpuAllocatedBytes(): number {
  const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
  return m.numBytesAllocatedInGPU ?? m.numBytes;
}

/** Starts a new peak window at the current live bytes. */
export function resetPeakBytes(): void {
  peak.bytes = gpuMemoryBytes();
}

/** Highest live tensor bytes seen after any GPU program since the last reset (or now, if higher). */
export function peakBytes(): number {
  peak.bytes = Math.max(peak.bytes, gpuMemoryBytes());
  return peak.bytes;
}

function installPeakSampler(backend: WebGPUBackend): void {
  if (peak.installed) return;
  peak.installed = true;
  // Wrap the instance method, not the prototype: only this backend is watched, and the
  // sample is one number read per program (no GPU sync), cheap beside any dispatch.
  const run = backend.runWebGPUProgram.bind(backend);
  backend.runWebGPUProgram = (...args: Parameters<WebGPUBackend['runWebGPUProgram']>) => {
    const out = run(...args);
    // The engine starts tracking `out` only after the kernel returns: count it here.
    const live = tf.memory().numBytes + 4 * tf.util.sizeFromShape(out.shape);
    if (live > peak.bytes) peak.bytes = live;
    return out;
  };
}
