// The engine notices WebGPU validation errors, which WebGPU reports only as events: a tfjs op
// with more storage buffers than the adapter allows silently computes nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngineBackend, takeGpuErrors, throwIfGpuError, webgpuBackend } from '../../src/engine/backend';

beforeAll(async () => {
  await initEngineBackend();
});

describe('GPU error watch', () => {
  it('records an uncaptured validation error and throws it once', async () => {
    takeGpuErrors();
    const device = webgpuBackend().device;
    // an invalid buffer usage combination (MAP_READ with STORAGE) is a validation error
    device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 50));
    expect(() => throwIfGpuError('test step')).toThrow(/test step: the GPU rejected work/);
    expect(takeGpuErrors()).toEqual([]);
  });

  it('stays quiet for valid work', async () => {
    takeGpuErrors();
    const y = tf.add(tf.ones([8]), tf.ones([8]));
    expect(Array.from(await y.data())).toEqual(Array(8).fill(2));
    y.dispose();
    expect(() => throwIfGpuError('valid')).not.toThrow();
  });
});
