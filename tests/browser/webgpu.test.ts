// The harness itself: a real WebGPU adapter must exist in the test browser. Under CI a
// missing adapter fails the run; a WebGPU test may never pass by skipping.
import { describe, expect, it } from 'vitest';
import { probeGpu } from '../../src/lib/gpu/gpu_report';
import { startEngine } from '../../src/lib/api/engine_client';

describe('WebGPU in the test browser', () => {
  it('has a real adapter that runs a compute shader', async () => {
    const report = await probeGpu();
    expect(report.available, report.reason).toBe(true);
    const adapter = (await navigator.gpu.requestAdapter())!;
    const device = await adapter.requestDevice();
    const module = device.createShaderModule({
      code: `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
               if (g.x < arrayLength(&x)) { x[g.x] = x[g.x] * 2.0 + 1.0; } }`,
    });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const n = 100;
    const buf = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, new Float32Array(n).map((_, i) => i));
    const read = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    enc.copyBufferToBuffer(buf, 0, read, 0, n * 4);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(read.getMappedRange().slice(0));
    expect(out[0]).toBe(1);
    expect(out[99]).toBe(199);
    device.destroy();
  });

  it('reports the adapter from inside the engine worker', async () => {
    const { engine, terminate } = startEngine();
    try {
      const report = await engine.gpuReport();
      expect(report.available, report.reason).toBe(true);
      expect(typeof report.vendor).toBe('string');
      expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    } finally {
      terminate();
    }
  });
});
