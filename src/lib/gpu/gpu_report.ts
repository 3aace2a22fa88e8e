// Probe WebGPU wherever a `GPU` object exists (page, worker, or Node with a WebGPU binding).
// Touches no DOM API, so the engine can use it anywhere.
import type { GpuReport } from '../api/engine_api';

const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export const WEBGPU_HELP =
  'Use a recent Chrome or Edge (version 113 or newer) on a desktop with WebGPU enabled. ' +
  'On Linux, start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan, or enable ' +
  'chrome://flags/#enable-unsafe-webgpu. Firefox and Safari builds without WebGPU cannot run the model; ' +
  'the dataset workspace still works there.';

export async function probeGpu(gpu: GPU | undefined = globalThis.navigator?.gpu): Promise<GpuReport> {
  const empty = { features: [], limits: {}, backend: null };
  if (!gpu) return { ...empty, available: false, reason: `This browser exposes no WebGPU (navigator.gpu is missing). ${WEBGPU_HELP}` };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { ...empty, available: false, reason: `requestAdapter() failed: ${String(e)}. ${WEBGPU_HELP}` };
  }
  if (!adapter) {
    return { ...empty, available: false, reason: `WebGPU is present but no adapter was found (GPU blocklisted or disabled). ${WEBGPU_HELP}` };
  }
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) limits[name] = Number(adapter.limits[name]);
  return {
    available: true,
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean })?.isFallbackAdapter ?? false,
    features: [...adapter.features].sort(),
    limits,
    backend: null,
  };
}
