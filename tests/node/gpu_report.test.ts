import { describe, expect, it } from 'vitest';
import { probeGpu } from '../../src/lib/gpu/gpu_report';

describe('probeGpu without WebGPU', () => {
  it('explains what to do when navigator.gpu is missing', async () => {
    const r = await probeGpu(undefined);
    expect(r.available).toBe(false);
    expect(r.reason).toMatch(/Chrome or Edge/);
  });
  it('explains a missing adapter', async () => {
    const fake = { requestAdapter: async () => null } as unknown as GPU;
    const r = await probeGpu(fake);
    expect(r.available).toBe(false);
    expect(r.reason).toMatch(/no adapter/);
  });
});
