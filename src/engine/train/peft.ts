// Adapters in Hugging Face PEFT's file layout, both ways, and a merged full-model export.
//
// adapter_config.json + adapter_model.safetensors, as PEFT's save_pretrained writes them:
//   base_model.model.<module>.lora_A.weight  (r, inF)
//   base_model.model.<module>.lora_B.weight  (outF, r)
//   base_model.model.<module>.weight         a module_to_save (fully trained connector)
// https://github.com/huggingface/peft/blob/main/src/peft/utils/save_and_load.py
// target_modules lists the FULL names of exactly the trained modules: PEFT matches each entry
// as the whole module name or as a ".<entry>" suffix, so a bare "q_proj" would also put LoRA on
// the vision encoder's attention when the file is loaded in Python (TRAPS.md).
//
// Import validates the file against the model's config before anything reaches the GPU: every
// key named, every shape checked, each module's lora_A and lora_B both present, and only what
// our AdapterSet can express accepted (no DoRA, no per-module rank patterns, no bias training).
//
// Merged export streams: W' = W + scale * B A for each LoRA module (W dequantized to f32 from the
// ORIGINAL safetensors, not the quantized GPU copy), modules_to_save replacing theirs, every
// other tensor copied; one tensor is held at a time, emitted as byte chunks for a Blob or a file.
// r rank, inF / outF a module's input / output features.
import type { VlmConfig } from '../config';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  SafetensorsFile,
  writeSafetensors,
  type SafetensorsDtype,
} from '../load/safetensors';
import { adapterTargets, CONNECTOR_MODULE, loraScale, type ModuleShape } from './lora';
import type { LoraSpec, NamedArray, TrainableParts } from './train_types';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

/** The adapter_config.json fields PEFT's LoraConfig reads (those we set and those we check). */
export interface PeftLoraConfig {
  base_model_name_or_path: string;
  peft_type: 'LORA';
  task_type: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  use_rslora: boolean;
  target_modules: string[] | string;
  modules_to_save: string[] | null;
  bias: 'none' | 'all' | 'lora_only';
  fan_in_fan_out: boolean;
  inference_mode: boolean;
  init_lora_weights: boolean;
  use_dora: boolean;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  layers_to_transform: number[] | number | null;
  layers_pattern: string | string[] | null;
  revision: string | null;
}

/** Which modules a set of PEFT-named arrays trains. */
export interface TrainedModules {
  lora: string[];
  full: string[];
}

type ParsedKey = { module: string; part: 'lora_A' | 'lora_B' | 'full' };

function parseKey(key: string): ParsedKey | null {
  if (!key.startsWith(PREFIX)) return null;
  const rest = key.slice(PREFIX.length);
  for (const part of ['lora_A', 'lora_B'] as const) {
    const suffix = `.${part}.weight`;
    if (rest.endsWith(suffix)) return { module: rest.slice(0, -suffix.length), part };
  }
  if (rest.endsWith('.weight') && !/\.lora_[A-Za-z_]+\.weight$/.test(rest)) return { module: rest.slice(0, -'.weight'.length), part: 'full' };
  return null;
}

/** The trained modules named by PEFT-style arrays, in their order; throws on names it cannot place. */
export function trainedModules(arrays: readonly NamedArray[]): TrainedModules {
  const lora: string[] = [];
  const full: string[] = [];
  for (const a of arrays) {
    const k = parseKey(a.name);
    if (!k) throw new Error(`adapter export: tensor ${a.name} is not a PEFT adapter name (base_model.model.<module>.lora_A.weight, .lora_B.weight or .weight)`);
    if (k.part === 'full') full.push(k.module);
    else if (!lora.includes(k.module)) lora.push(k.module);
  }
  return { lora, full };
}

/** adapter_config.json for an adapter of `modules` over `baseModel`. */
export function peftConfig(baseModel: string, lora: LoraSpec, modules: TrainedModules): PeftLoraConfig {
  return {
    base_model_name_or_path: baseModel,
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    use_rslora: lora.rsLora,
    target_modules: [...modules.lora],
    modules_to_save: modules.full.length > 0 ? [...modules.full] : null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
    layers_to_transform: null,
    layers_pattern: null,
    revision: null,
  };
}

export interface PeftFiles {
  config: PeftLoraConfig;
  /** adapter_config.json's text. */
  configJson: string;
  /** adapter_model.safetensors' bytes. */
  weights: Uint8Array<ArrayBuffer>;
}

/**
 * The adapter as PEFT files. `arrays` are the trainable tensors as AdapterSet.toNamedArrays()
 * (or a checkpoint's params) name them; their names decide target_modules and modules_to_save.
 */
export function exportPeftAdapter(
  arrays: readonly NamedArray[],
  opts: { baseModel: string; lora: LoraSpec; dtype?: SafetensorsDtype },
): PeftFiles {
  const modules = trainedModules(arrays);
  const names = new Set(arrays.map((a) => a.name));
  for (const m of modules.lora) {
    for (const part of ['lora_A', 'lora_B']) {
      const key = `${PREFIX}${m}.${part}.weight`;
      if (!names.has(key)) throw new Error(`adapter export: ${key} is missing (module ${m} needs both lora_A and lora_B)`);
    }
  }
  const config = peftConfig(opts.baseModel, opts.lora, modules);
  const weights = writeSafetensors(arrays, opts.dtype ?? 'F32', { format: 'pt' });
  return { config, configJson: JSON.stringify(config, null, 2), weights };
}

/** An adapter read from PEFT files, checked against a model config. */
export interface ImportedAdapter {
  baseModel: string;
  /** LoRA settings to build an AdapterSet with (targetModules: the suffixes of the trained modules). */
  lora: LoraSpec;
  /** Which parts the adapter trains, for the AdapterSet. */
  parts: TrainableParts;
  modules: TrainedModules;
  /** Tensors under PEFT names, float32, ready for AdapterSet.loadNamedArrays. */
  arrays: NamedArray[];
}

const TEXT_LAYERS = 'model.text_model.layers.';
const VISION_LAYERS = 'model.vision_model.encoder.layers.';

/** PEFT's rule for a list of target modules: the whole name or a ".<entry>" suffix. */
function pefMatches(targets: string[] | string, module: string): boolean {
  if (typeof targets === 'string') {
    // A regex that must match the whole name (re.fullmatch); 'all-linear' is a keyword.
    if (targets === 'all-linear') return true;
    try {
      return new RegExp(`^(?:${targets})$`).test(module);
    } catch {
      return false;
    }
  }
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

function field<T>(cfg: Record<string, unknown>, name: string, file: string, check: (v: unknown) => boolean, want: string, fallback?: T): T {
  const v = cfg[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!check(v)) throw new Error(`${file}: field "${name}" is ${JSON.stringify(v)}; expected ${want}`);
  return v as T;
}

/**
 * Reads adapter_config.json (parsed or text) and adapter_model.safetensors, and checks them
 * against `model`: errors name the file and the key or field at fault.
 */
export async function importPeftAdapter(
  configJson: string | unknown,
  weights: Blob | Uint8Array<ArrayBuffer>,
  model: VlmConfig,
  fileNames: { config?: string; weights?: string } = {},
): Promise<ImportedAdapter> {
  const cfgFile = fileNames.config ?? ADAPTER_CONFIG_FILE;
  const wFile = fileNames.weights ?? ADAPTER_WEIGHTS_FILE;
  let raw: unknown = configJson;
  if (typeof configJson === 'string') {
    try {
      raw = JSON.parse(configJson);
    } catch (e) {
      throw new Error(`${cfgFile}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${cfgFile}: not a JSON object`);
  const cfg = raw as Record<string, unknown>;
  const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const peftType = field<string>(cfg, 'peft_type', cfgFile, (v) => v === 'LORA', '"LORA" (only LoRA adapters can be imported)');
  void peftType;
  const r = field<number>(cfg, 'r', cfgFile, (v) => Number.isInteger(v) && (v as number) >= 1, 'a positive integer rank');
  const alpha = field<number>(cfg, 'lora_alpha', cfgFile, isNum, 'a number', r);
  const dropout = field<number>(cfg, 'lora_dropout', cfgFile, (v) => isNum(v) && (v as number) >= 0 && (v as number) < 1, 'a number in [0, 1)', 0);
  const rsLora = field<boolean>(cfg, 'use_rslora', cfgFile, (v) => typeof v === 'boolean', 'true or false', false);
  const baseModel = field<string>(cfg, 'base_model_name_or_path', cfgFile, (v) => typeof v === 'string' || v === null, 'a string', '') ?? '';
  if (cfg.use_dora === true) throw new Error(`${cfgFile}: use_dora is true; DoRA adapters are not supported, only plain LoRA`);
  if (cfg.fan_in_fan_out === true) throw new Error(`${cfgFile}: fan_in_fan_out is true (GPT-2 Conv1D layout); Idefics3's linears are (out, in), so this adapter is for another model`);
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw new Error(`${cfgFile}: bias is ${JSON.stringify(cfg.bias)}; only "none" is supported (trained biases are not)`);
  for (const p of ['rank_pattern', 'alpha_pattern']) {
    const v = cfg[p];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) throw new Error(`${cfgFile}: ${p} sets per-module values (${Object.keys(v).slice(0, 3).join(', ')}); only one r and lora_alpha for all modules are supported`);
  }
  const targets = (cfg.target_modules ?? []) as string[] | string;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string')))) {
    throw new Error(`${cfgFile}: target_modules is ${JSON.stringify(cfg.target_modules)}; expected a list of module names or a regex string`);
  }

  // What the model allows: every LoRA-able linear (all parts on) and the connector as a full module.
  const allLora = adapterTargets(model, { textLora: true, visionLora: true, connector: 'lora' }, { targetModules: [] }).lora;
  const loraShapes = new Map<string, ModuleShape>(allLora.map((m) => [m.name, m]));
  const fullShapes = new Map<string, ModuleShape>(
    adapterTargets(model, { textLora: false, visionLora: false, connector: 'full' }, { targetModules: [] }).full.map((m) => [m.name, m]),
  );

  const file = await SafetensorsFile.open(weights instanceof Blob ? weights : new Blob([weights]), { file: wFile });
  const arrays: NamedArray[] = [];
  const seen = new Map<string, Set<string>>(); // module -> parts present
  const full: string[] = [];
  const lora: string[] = [];
  const shapeOk = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  for (const info of file.header.tensors) {
    const k = parseKey(info.name);
    if (!k) throw new Error(`${wFile}: tensor ${info.name} is not a LoRA adapter tensor (expected base_model.model.<module>.lora_A.weight / .lora_B.weight, or .weight for a module to save)`);
    if (k.part === 'full') {
      const m = fullShapes.get(k.module);
      if (!m) throw new Error(`${wFile}: tensor ${info.name}: ${k.module} cannot be trained fully here; only ${CONNECTOR_MODULE} can`);
      if (!shapeOk(info.shape, [m.outF, m.inF])) throw new Error(`${wFile}: tensor ${info.name} has shape [${info.shape.join(', ')}], the model's ${k.module} is [${m.outF}, ${m.inF}]`);
      full.push(k.module);
      continue;
    }
    const m = loraShapes.get(k.module);
    if (!m) throw new Error(`${wFile}: tensor ${info.name}: this model has no LoRA-able linear module ${k.module} (another model's adapter?)`);
    const want = k.part === 'lora_A' ? [r, m.inF] : [m.outF, r];
    if (!shapeOk(info.shape, want)) {
      throw new Error(`${wFile}: tensor ${info.name} has shape [${info.shape.join(', ')}], expected [${want.join(', ')}] (r = ${r} from ${cfgFile}, module ${m.outF} x ${m.inF})`);
    }
    if (!pefMatches(targets, k.module)) throw new Error(`${wFile}: tensor ${info.name} is for ${k.module}, which ${cfgFile}'s target_modules does not name`);
    if (!seen.has(k.module)) {
      seen.set(k.module, new Set());
      lora.push(k.module);
    }
    seen.get(k.module)!.add(k.part);
  }
  for (const [module, parts] of seen) {
    const missing = ['lora_A', 'lora_B'].find((p) => !parts.has(p));
    if (missing) throw new Error(`${wFile}: ${PREFIX}${module}.${missing}.weight is missing (its ${[...parts][0]} is present)`);
  }
  if (lora.length + full.length === 0) throw new Error(`${wFile}: holds no adapter tensors`);
  for (const m of (cfg.modules_to_save as string[] | null | undefined) ?? []) {
    if (typeof m !== 'string') throw new Error(`${cfgFile}: modules_to_save must list module names`);
  }
  for await (const t of file.tensors()) arrays.push({ name: t.name, shape: t.shape, data: t.data });

  const parts: TrainableParts = {
    textLora: lora.some((m) => m.startsWith(TEXT_LAYERS)),
    visionLora: lora.some((m) => m.startsWith(VISION_LAYERS)),
    connector: full.includes(CONNECTOR_MODULE) ? 'full' : lora.includes(CONNECTOR_MODULE) ? 'lora' : 'frozen',
  };
  const suffixes = [...new Set(lora.filter((m) => m !== CONNECTOR_MODULE).map((m) => m.slice(m.lastIndexOf('.') + 1)))];
  const spec: LoraSpec = { r, alpha, dropout, rsLora, targetModules: suffixes };
  // Our AdapterSet targets by part + suffix; an adapter on only some layers of a part cannot be
  // rebuilt exactly, so say so rather than load a partial adapter.
  const rebuilt = adapterTargets(model, parts, spec);
  const rebuiltLora = new Set(rebuilt.lora.map((m) => m.name));
  const extra = [...rebuiltLora].filter((m) => !seen.has(m));
  if (extra.length > 0) {
    throw new Error(
      `${wFile}: the adapter trains ${suffixes.join(', ')} in some layers but not in ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}; only adapters covering every layer of a part are supported`,
    );
  }
  return { baseModel, lora: spec, parts, modules: { lora, full }, arrays };
}

// ---------------------------------------------------------------------------------------------
// merged export

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

function encode(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint16Array(data.length);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]);
  return new Uint8Array(out.buffer);
}

/** W (outF, inF) += scale * B (outF, r) @ A (r, inF), in place. */
export function addLoraDelta(w: Float32Array, a: Float32Array, b: Float32Array, outF: number, inF: number, r: number, scale: number): void {
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    for (let k = 0; k < r; k++) {
      const s = scale * b[o * r + k];
      if (s === 0) continue;
      const ak = k * inF;
      for (let i = 0; i < inF; i++) w[row + i] += s * a[ak + i];
    }
  }
}

/**
 * A full model.safetensors with the adapter merged in, as byte chunks (header first, then one
 * chunk per tensor): `new Blob(chunks)` or a file stream takes them without the whole file in
 * memory. `bases` are the base model's safetensors (all shards), read tensor by tensor.
 */
export async function* mergedModelChunks(
  bases: readonly SafetensorsFile[],
  arrays: readonly NamedArray[],
  lora: Pick<LoraSpec, 'r' | 'alpha' | 'rsLora'>,
  dtype: SafetensorsDtype = 'F32',
): AsyncGenerator<Uint8Array> {
  const modules = trainedModules(arrays);
  const byName = new Map(arrays.map((a) => [a.name, a]));
  const scale = loraScale(lora);
  const infos = bases.flatMap((f) => f.header.tensors.map((t) => ({ t, file: f.file })));
  const have = new Map(infos.map(({ t, file }) => [t.name, { t, file }]));
  for (const m of modules.lora) {
    for (const part of ['lora_A', 'lora_B']) {
      if (!byName.has(`${PREFIX}${m}.${part}.weight`)) throw new Error(`merge: ${PREFIX}${m}.${part}.weight is missing`);
    }
  }
  for (const m of [...modules.lora, ...modules.full]) {
    const base = have.get(`${m}.weight`);
    if (!base) throw new Error(`merge: the base model has no ${m}.weight for the adapter's module ${m}`);
    if (base.t.shape.length !== 2) throw new Error(`merge: ${m}.weight in ${base.file} is not 2-D`);
  }

  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const { t } of infos) {
    if (t.name in header) throw new Error(`merge: tensor ${t.name} appears in more than one base file`);
    const n = t.shape.reduce((x, y) => x * y, 1);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n * DTYPE_BYTES[dtype]] };
    offset += n * DTYPE_BYTES[dtype];
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20);
  new DataView(head.buffer).setUint32(0, padded, true);
  new DataView(head.buffer).setUint32(4, 0, true);
  head.set(json, 8);
  yield head;

  const loraSet = new Set(modules.lora);
  const fullSet = new Set(modules.full);
  for (const f of bases) {
    for await (const t of f.tensors()) {
      const module = t.name.endsWith('.weight') ? t.name.slice(0, -'.weight'.length) : '';
      let data = t.data; // fresh per tensor: safe to modify
      if (fullSet.has(module)) {
        data = byName.get(`${PREFIX}${module}.weight`)!.data;
        if (data.length !== t.data.length) throw new Error(`merge: ${PREFIX}${module}.weight has ${data.length} values, ${t.name} has ${t.data.length}`);
      } else if (loraSet.has(module)) {
        const a = byName.get(`${PREFIX}${module}.lora_A.weight`)!; // (r, inF)
        const b = byName.get(`${PREFIX}${module}.lora_B.weight`)!; // (outF, r)
        const [outF, inF] = t.shape;
        if (a.shape[0] !== lora.r || a.shape[1] !== inF || b.shape[0] !== outF || b.shape[1] !== lora.r) {
          throw new Error(`merge: ${module}: lora_A [${a.shape.join(', ')}] / lora_B [${b.shape.join(', ')}] do not fit ${t.name} [${outF}, ${inF}] at r = ${lora.r}`);
        }
        addLoraDelta(data, a.data, b.data, outF, inF, lora.r, scale);
      }
      yield encode(data, dtype);
    }
  }
}
