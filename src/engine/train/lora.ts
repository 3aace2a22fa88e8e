// LoRA adapters (and fully trained modules) as the model's LinearAdapters: for each targeted
// linear module W (outF, inF), a pair lora_A (r, inF) and lora_B (outF, r) adds
//   delta(x) = scale * ((dropout(x) A^T) B^T),   scale = alpha / r   (rsLoRA: alpha / sqrt(r)),
// with PEFT's semantics and init: A kaiming-uniform with a = sqrt(5), which for a (r, inF)
// matrix is U(-1/sqrt(inF), 1/sqrt(inF)); B zeros, so a fresh adapter changes nothing.
// https://github.com/huggingface/peft/blob/main/src/peft/tuners/lora/layer.py
// (LoraLayer.update_layer / reset_lora_parameters, Linear.forward)
// Both matmuls run through the model's ops.linear on f32 LinearWeights wrapping the variables,
// so the custom path's linear kernels and their backward run the adapter too.
//
// The connector can instead be trained fully ('full'): an f32 variable copy of its
// (dequantized) projection replaces the frozen weight. The frozen base itself stays as loaded
// (quantized or not).
//
// Names follow PEFT's saved adapter files so the exporter can write them as they are:
//   base_model.model.<module>.lora_A.weight / .lora_B.weight   (LoRA)
//   base_model.model.<module>.weight                           (modules_to_save, i.e. 'full')
// with <module> the HF module name, e.g. model.text_model.layers.0.self_attn.q_proj.
//
// r rank, inF / outF the module's input / output features, N rows.
import * as tf from '@tensorflow/tfjs';
import type { VlmConfig } from '../config';
import { expectedWeights } from '../load/weight_names';
import type { LinearAdapters } from '../model/linears';
import type { LinearWeight, Ops } from '../ops/ops';
import { dequantizeLinear } from '../ops/stock_ops';
import type { ModelWeights } from '../weights';
import { mulberry32, type Rng } from '../../lib/util/rng';
import type { LoraSpec, NamedArray, TrainableParts } from './train_types';

/** The text decoder's linear layers (LlamaDecoderLayer). */
export const TEXT_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/** The vision encoder's linear layers (SigLIP encoder layer; the patch conv is not a target). */
export const VISION_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] as const;
/** A targetModules list that covers every linear of whichever parts a run trains. */
export const DEFAULT_LORA_TARGETS: string[] = [...new Set<string>([...TEXT_LORA_TARGETS, ...VISION_LORA_TARGETS])];

export const CONNECTOR_MODULE = 'model.connector.modality_projection.proj';
const TEXT_LAYERS = 'model.text_model.layers.';
const VISION_LAYERS = 'model.vision_model.encoder.layers.';
const PEFT_PREFIX = 'base_model.model.';

export interface ModuleShape {
  name: string; // HF module name, no `.weight`
  inF: number;
  outF: number;
}

/** What a run trains: LoRA modules and fully trained modules, in model order. */
export interface AdapterTargets {
  lora: ModuleShape[];
  full: ModuleShape[];
}

/** scale = alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScale(spec: Pick<LoraSpec, 'r' | 'alpha' | 'rsLora'>): number {
  return spec.rsLora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
}

/**
 * The modules a run trains. Within each enabled part (text decoder LoRA, vision encoder LoRA),
 * a linear module is a LoRA target when the last component of its name is in
 * spec.targetModules (an empty list targets every linear of the part). The connector's
 * projection is a target whenever its part says 'lora' or 'full' (the part choice is
 * explicit). Matching is per part, never by bare suffix over the whole model (TRAPS.md: PEFT's
 * `q_proj` would also hit the vision encoder).
 */
export function adapterTargets(config: VlmConfig, parts: TrainableParts, spec: Pick<LoraSpec, 'targetModules'>): AdapterTargets {
  const wanted = (name: string) => spec.targetModules.length === 0 || spec.targetModules.includes(name.slice(name.lastIndexOf('.') + 1));
  const out: AdapterTargets = { lora: [], full: [] };
  for (const [full, s] of expectedWeights(config)) {
    if (s.role !== 'linear' || !full.endsWith('.weight')) continue;
    const name = full.slice(0, -'.weight'.length);
    const m: ModuleShape = { name, outF: s.shape[0], inF: s.shape[1] };
    if (name === CONNECTOR_MODULE) {
      if (parts.connector === 'lora') out.lora.push(m);
      if (parts.connector === 'full') out.full.push(m);
    } else if (name.startsWith(TEXT_LAYERS)) {
      if (parts.textLora && wanted(name)) out.lora.push(m);
    } else if (name.startsWith(VISION_LAYERS)) {
      if (parts.visionLora && wanted(name)) out.lora.push(m);
    }
  }
  return out;
}

interface LoraPair {
  module: ModuleShape;
  a: tf.Variable<tf.Rank.R2>; // (r, inF) lora_A
  b: tf.Variable<tf.Rank.R2>; // (outF, r) lora_B
  wa: LinearWeight; // f32 view of a: x (N, inF) -> (N, r)
  wb: LinearWeight; // f32 view of b: (N, r) -> (N, outF)
}

interface FullModule {
  module: ModuleShape;
  w: tf.Variable<tf.Rank.R2>; // (outF, inF) f32 copy of the frozen weight
  lw: LinearWeight;
}

/** A trainable tensor with its PEFT-style name. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

export class AdapterSet implements LinearAdapters {
  /** Adapter on (true) or off (false): off, the model is exactly the frozen base. */
  enabled = true;
  /** Dropout on the LoRA input branch runs only while training is true. */
  training = false;
  readonly spec: LoraSpec;
  readonly scale: number;
  private readonly pairs = new Map<string, LoraPair>();
  private readonly fulls = new Map<string, FullModule>();
  private dropoutRng: Rng;
  private disposed = false;

  /**
   * Fresh adapters for `weights`' model: the same seed gives the same lora_A init (module by
   * module in model order) and, after setDropoutSeed, the same dropout masks.
   */
  constructor(weights: ModelWeights, parts: TrainableParts, spec: LoraSpec, seed: number) {
    if (!(spec.r >= 1 && Number.isInteger(spec.r))) throw new Error(`LoRA: rank r must be a positive integer, got ${spec.r}`);
    if (!(spec.dropout >= 0 && spec.dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${spec.dropout}`);
    this.spec = spec;
    this.scale = loraScale(spec);
    const targets = adapterTargets(weights.config, parts, spec);
    if (targets.lora.length + targets.full.length === 0) {
      throw new Error(
        `LoRA: nothing to train: parts ${JSON.stringify(parts)} with targetModules [${spec.targetModules.join(', ')}] match no linear module`,
      );
    }
    const rng = mulberry32(seed);
    const r = spec.r;
    for (const m of targets.lora) {
      const bound = 1 / Math.sqrt(m.inF); // kaiming_uniform_(a=sqrt(5)) on (r, inF)
      const aData = Float32Array.from({ length: r * m.inF }, () => (2 * rng() - 1) * bound); // (r, inF)
      const a = tf.variable(tf.tensor2d(aData, [r, m.inF]), true) as tf.Variable<tf.Rank.R2>;
      const b = tf.variable(tf.zeros([m.outF, r]), true) as tf.Variable<tf.Rank.R2>; // (outF, r)
      this.pairs.set(m.name, {
        module: m,
        a,
        b,
        wa: { kind: 'f32', inF: m.inF, outF: r, w: a },
        wb: { kind: 'f32', inF: r, outF: m.outF, w: b },
      });
    }
    for (const m of targets.full) {
      const base = weights.linear(m.name);
      const wf = dequantizeLinear(base); // (outF, inF)
      const w = tf.variable(wf, true) as tf.Variable<tf.Rank.R2>; // a copy: the frozen weight stays as it is
      if (wf !== (base.kind === 'f32' ? base.w : null)) wf.dispose();
      this.fulls.set(m.name, { module: m, w, lw: { kind: 'f32', inF: m.inF, outF: m.outF, w, bias: base.bias } });
    }
    this.dropoutRng = mulberry32(seed ^ 0x5bd1e995);
  }

  /** Restart the dropout mask stream (the trainer does this per optimiser step, for exact resume). */
  setDropoutSeed(seed: number): void {
    this.dropoutRng = mulberry32(seed);
  }

  weight(name: string): LinearWeight | undefined {
    if (!this.enabled) return undefined;
    return this.fulls.get(name)?.lw;
  }

  delta(name: string, x: tf.Tensor2D, ops: Ops): tf.Tensor2D | null {
    if (!this.enabled) return null;
    const p = this.pairs.get(name);
    if (!p) return null;
    this.assertLive();
    const rate = this.training ? this.spec.dropout : 0;
    // drawn outside the tidy so every call advances the stream, on or off the tape
    const maskSeed = rate > 0 ? Math.floor(this.dropoutRng() * 2 ** 31) : 0;
    return tf.tidy(() => {
      const xd = rate > 0 ? (tf.dropout(x, rate, undefined, maskSeed) as tf.Tensor2D) : x; // (N, inF), scaled by 1/(1-rate)
      const down = ops.linear(xd, p.wa); // (N, r)
      const up = ops.linear(down, p.wb); // (N, outF)
      return tf.mul(up, this.scale) as tf.Tensor2D;
    });
  }

  /** The modules trained, HF names: LoRA pairs and fully trained modules (for the exporter). */
  trainedModuleNames(): { lora: string[]; full: string[] } {
    return { lora: [...this.pairs.keys()], full: [...this.fulls.keys()] };
  }

  /** Every trainable variable with its PEFT-style name, in a fixed order. */
  variables(): NamedVariable[] {
    this.assertLive();
    const out: NamedVariable[] = [];
    for (const [m, p] of this.pairs) {
      out.push({ name: `${PEFT_PREFIX}${m}.lora_A.weight`, variable: p.a });
      out.push({ name: `${PEFT_PREFIX}${m}.lora_B.weight`, variable: p.b });
    }
    for (const [m, f] of this.fulls) out.push({ name: `${PEFT_PREFIX}${m}.weight`, variable: f.w });
    return out;
  }

  /** Trainable values (float count). */
  parameterCount(): number {
    return this.variables().reduce((n, v) => n + v.variable.size, 0);
  }

  /** Host copies of every trainable tensor, PEFT-style names. */
  async toNamedArrays(): Promise<NamedArray[]> {
    const vars = this.variables();
    const datas = await Promise.all(vars.map((v) => v.variable.data() as Promise<Float32Array>));
    return vars.map((v, i) => ({ name: v.name, shape: [...v.variable.shape], data: datas[i] }));
  }

  /** Overwrite the trainable tensors from host arrays (a checkpoint or an adapter file): all must be present. */
  loadNamedArrays(arrays: readonly NamedArray[]): void {
    const byName = new Map(arrays.map((a) => [a.name, a]));
    for (const v of this.variables()) {
      const a = byName.get(v.name);
      if (!a) throw new Error(`adapter load: tensor ${v.name} is missing (the file was saved for other modules or another rank?)`);
      const want = v.variable.shape;
      if (a.shape.length !== want.length || a.shape.some((d, i) => d !== want[i]) || a.data.length !== v.variable.size) {
        throw new Error(`adapter load: ${v.name} has shape [${a.shape.join(', ')}], the adapter expects [${want.join(', ')}]`);
      }
      tf.tidy(() => v.variable.assign(tf.tensor(a.data, want)));
    }
  }

  dispose(): void {
    if (this.disposed) return;
    for (const p of this.pairs.values()) tf.dispose([p.a, p.b]);
    for (const f of this.fulls.values()) f.w.dispose();
    this.pairs.clear();
    this.fulls.clear();
    this.disposed = true;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('AdapterSet: used after dispose()');
  }
}
