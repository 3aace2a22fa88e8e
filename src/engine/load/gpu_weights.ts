// GPU-resident model weights (the ModelWeights the model reads), built from named host tensors
// one at a time: each arrives as float32, is quantised on the CPU if asked (load/quantize.ts),
// uploaded as tfjs tensors, and its host copy released, so peak CPU memory stays near one
// tensor rather than the whole model.
//
// Storage policy:
// - 2-D weights of linear layers and the embedding / lm_head tables: f32, q8 or q4 as asked.
// - the patch-embedding conv (C_v, ch, p, p): presented as a linear (C_v, ch*p*p) in the conv's
//   (c, ky, kx) order, always f32: it is small (0.6M values for SmolVLM) and its inputs are raw
//   pixels, where quantisation error would reach every later layer.
// - norms, biases, position embeddings: f32 tensors.
// - tied lm_head: `linear('lm_head')` returns the embedding table's LinearWeight.
import * as tf from '@tensorflow/tfjs';
import type { VlmConfig } from '../config';
import type { LinearWeight } from '../ops/ops';
import type { ModelWeights, Quantization } from '../weights';
import { chooseQ4GroupSize, quantizeQ4, quantizeQ8 } from './quantize';
import { shapeString } from './weight_names';

/** A tensor on the host, float32, row-major, under its HF checkpoint name. */
export interface HostTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface GpuWeightsOptions {
  quantization: Quantization;
  /** Preferred q4 group size along inF; per weight the largest valid size <= this is used. */
  q4GroupSize?: number;
}

const PATCH_EMBEDDING = 'model.vision_model.embeddings.patch_embedding';
const EMBED_TOKENS = 'model.text_model.embed_tokens';

/** Whether a tensor is stored as a (possibly quantised) linear weight, by name and rank. */
export function isLinearWeight(name: string, shape: readonly number[]): boolean {
  if (!name.endsWith('.weight')) return false;
  if (name === `${PATCH_EMBEDDING}.weight`) return shape.length === 4;
  return shape.length === 2 && !name.endsWith('position_embedding.weight');
}

/**
 * Makes a freshly created tensor GPU-resident now and frees tfjs' host copy of it.
 * tfjs-backend-webgpu 4.22 keeps a tensor's values in a JS array until a kernel first reads it,
 * so without this the whole model would sit in CPU memory after loading. Relies on that
 * backend's `uploadToGPU` and `submitQueue` (4.22 is the last tfjs release, so they are fixed);
 * on other backends (cpu in node tests) it does nothing.
 */
function makeResident(t: tf.Tensor): void {
  const backend = tf.backend() as unknown as {
    uploadToGPU?: (dataId: object) => void;
    submitQueue?: () => void;
    commandEncoder?: unknown;
  };
  if (typeof backend.uploadToGPU !== 'function') return;
  backend.uploadToGPU(t.dataId);
  // A reused pool buffer is filled through a staging buffer and a queued copy: submit it so
  // the staging buffer is released before the next tensor arrives.
  if (backend.commandEncoder && typeof backend.submitQueue === 'function') backend.submitQueue();
}

function bytesOf(t: tf.Tensor): number {
  return t.size * 4; // float32 and int32 alike
}

export class GpuWeights implements ModelWeights {
  readonly config: VlmConfig;
  readonly quantization: Quantization;
  private readonly q4GroupSize: number;
  /** Linear weights by module name (no `.weight` suffix), bias attached at lookup. */
  private readonly linears = new Map<string, LinearWeight>();
  /** Every other tensor by full name (biases included). */
  private readonly plain = new Map<string, tf.Tensor>();
  private bytes = 0;
  private disposed = false;

  constructor(config: VlmConfig, opts: GpuWeightsOptions) {
    this.config = config;
    this.quantization = opts.quantization;
    this.q4GroupSize = opts.q4GroupSize ?? 64;
  }

  /** Build from a sequence of host tensors; each may be released by its producer after it is added. */
  static fromHostTensors(config: VlmConfig, opts: GpuWeightsOptions, tensors: Iterable<HostTensor>): GpuWeights {
    const w = new GpuWeights(config, opts);
    try {
      for (const t of tensors) w.add(t);
    } catch (e) {
      w.dispose();
      throw e;
    }
    return w;
  }

  /**
   * Upload one tensor. The caller should drop its reference to `t.data` afterwards; nothing
   * here keeps it (on the cpu backend tfjs adopts the array itself, so it must not be reused).
   */
  add(t: HostTensor): void {
    this.assertLive();
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`weight ${t.name}: shape ${shapeString(t.shape)} holds ${n} values but ${t.data.length} were given`);
    }
    if (this.has(t.name)) throw new Error(`weight ${t.name} was given twice`);
    if (!isLinearWeight(t.name, t.shape)) {
      const tensor = tf.tensor(t.data, t.shape, 'float32');
      makeResident(tensor);
      this.plain.set(t.name, tensor);
      this.bytes += bytesOf(tensor);
      return;
    }
    const module = t.name.slice(0, -'.weight'.length);
    const outF = t.shape[0];
    const inF = n / outF; // the conv's (ch, p, p) flattens to ch*p*p in row-major order
    const kind = module === PATCH_EMBEDDING ? 'f32' : this.quantization;
    let lw: LinearWeight;
    if (kind === 'f32') {
      const w = tf.tensor2d(t.data, [outF, inF], 'float32'); // (outF, inF)
      makeResident(w);
      lw = { kind: 'f32', inF, outF, w };
    } else if (kind === 'q8') {
      const p = quantizeQ8(t.data, outF, inF);
      const q = tf.tensor2d(p.q, [outF, Math.ceil(inF / 4)], 'int32'); // (outF, ceil(inF/4))
      const scale = tf.tensor1d(p.scale, 'float32'); // (outF)
      makeResident(q);
      makeResident(scale);
      lw = { kind: 'q8', inF, outF, q, scale };
    } else {
      const groupSize = chooseQ4GroupSize(inF, this.q4GroupSize);
      const p = quantizeQ4(t.data, outF, inF, groupSize);
      const q = tf.tensor2d(p.q, [outF, Math.ceil(inF / 8)], 'int32'); // (outF, ceil(inF/8))
      const scale = tf.tensor2d(p.scale, [outF, Math.ceil(inF / groupSize)], 'float32'); // (outF, groups)
      makeResident(q);
      makeResident(scale);
      lw = { kind: 'q4', inF, outF, groupSize, q, scale };
    }
    this.linears.set(module, lw);
    this.bytes += linearBytes(lw);
  }

  linear(name: string): LinearWeight {
    this.assertLive();
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
    let lw = this.linears.get(module);
    if (!lw && module === 'lm_head' && this.config.lm_tie_embeddings) lw = this.linears.get(EMBED_TOKENS);
    if (!lw) {
      const why = this.plain.has(`${module}.weight`) ? 'it is not a linear weight' : 'the model has no such weight';
      throw new Error(`linear layer ${module}: ${why}`);
    }
    const bias = this.plain.get(`${module}.bias`);
    return bias ? { ...lw, bias: bias as tf.Tensor1D } : lw;
  }

  tensor(name: string): tf.Tensor {
    this.assertLive();
    const t = this.plain.get(name);
    if (t) return t;
    if (name.endsWith('.weight')) {
      const lw = this.linears.get(name.slice(0, -'.weight'.length));
      if (lw?.kind === 'f32') return lw.w;
      if (lw) throw new Error(`weight ${name} is stored ${lw.kind}-quantised; read it through linear()`);
    }
    throw new Error(`weight ${name}: the model has no such tensor`);
  }

  has(name: string): boolean {
    if (this.plain.has(name)) return true;
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
    if (this.linears.has(module)) return true;
    return module === 'lm_head' && this.config.lm_tie_embeddings && this.linears.has(EMBED_TOKENS);
  }

  /** Full names of every tensor held, as in the checkpoint. */
  names(): string[] {
    return [...[...this.linears.keys()].map((m) => `${m}.weight`), ...this.plain.keys()];
  }

  gpuBytes(): number {
    return this.bytes;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const lw of this.linears.values()) {
      if (lw.kind === 'f32') lw.w.dispose();
      else {
        lw.q.dispose();
        lw.scale.dispose();
      }
    }
    for (const t of this.plain.values()) t.dispose();
    this.linears.clear();
    this.plain.clear();
    this.bytes = 0;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('model weights were disposed (model unloaded)');
  }
}

function linearBytes(lw: LinearWeight): number {
  return lw.kind === 'f32' ? bytesOf(lw.w) : bytesOf(lw.q) + bytesOf(lw.scale);
}
