// PEFT adapter files: config fields and exact target names, export/import round trip, clear
// errors on malformed adapters, and the streamed merged export (W + scale * B A).
import { describe, expect, it } from 'vitest';
import { randomHostTensors } from '../../src/engine/load/random_tensors';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/load/safetensors';
import { adapterTargets, CONNECTOR_MODULE } from '../../src/engine/train/lora';
import { addLoraDelta, exportPeftAdapter, importPeftAdapter, mergedModelChunks } from '../../src/engine/train/peft';
import type { LoraSpec, NamedArray, TrainableParts } from '../../src/engine/train/train_types';
import { mulberry32 } from '../../src/lib/util/rng';
import { tinyConfig } from '../util/tiny_config';

const config = tinyConfig();
const lora: LoraSpec = { r: 2, alpha: 8, dropout: 0.05, rsLora: false, targetModules: ['q_proj', 'v_proj'] };
const parts: TrainableParts = { textLora: true, visionLora: false, connector: 'full' };

/** What AdapterSet.toNamedArrays() would give for these parts, with random values. */
function fakeAdapter(seed = 1, p: TrainableParts = parts, spec: LoraSpec = lora): NamedArray[] {
  const rng = mulberry32(seed);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng() - 0.5);
  const t = adapterTargets(config, p, spec);
  const out: NamedArray[] = [];
  for (const m of t.lora) {
    out.push({ name: `base_model.model.${m.name}.lora_A.weight`, shape: [spec.r, m.inF], data: rand(spec.r * m.inF) });
    out.push({ name: `base_model.model.${m.name}.lora_B.weight`, shape: [m.outF, spec.r], data: rand(m.outF * spec.r) });
  }
  for (const m of t.full) out.push({ name: `base_model.model.${m.name}.weight`, shape: [m.outF, m.inF], data: rand(m.outF * m.inF) });
  return out;
}

describe('PEFT export', () => {
  it('writes PEFT config fields with the exact trained module names, and PEFT tensor keys', async () => {
    const arrays = fakeAdapter();
    const files = exportPeftAdapter(arrays, { baseModel: 'HuggingFaceTB/SmolVLM-256M-Instruct', lora });
    const cfg = JSON.parse(files.configJson);
    expect(cfg).toMatchObject({
      base_model_name_or_path: 'HuggingFaceTB/SmolVLM-256M-Instruct',
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 2,
      lora_alpha: 8,
      lora_dropout: 0.05,
      use_rslora: false,
      bias: 'none',
      modules_to_save: [CONNECTOR_MODULE],
    });
    // Full names, text decoder only: q_proj and v_proj of both layers, never the vision encoder's.
    expect(cfg.target_modules).toEqual([
      'model.text_model.layers.0.self_attn.q_proj',
      'model.text_model.layers.0.self_attn.v_proj',
      'model.text_model.layers.1.self_attn.q_proj',
      'model.text_model.layers.1.self_attn.v_proj',
    ]);
    const f = await SafetensorsFile.open(new Blob([files.weights]), { file: 'adapter_model.safetensors' });
    const names = f.header.tensors.map((t) => t.name);
    expect(names).toContain('base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(names).toContain('base_model.model.model.text_model.layers.1.self_attn.v_proj.lora_B.weight');
    expect(names).toContain(`base_model.model.${CONNECTOR_MODULE}.weight`);
    expect(f.header.tensors.find((t) => t.name.endsWith('layers.0.self_attn.q_proj.lora_A.weight'))!.shape).toEqual([2, 32]);
    expect(names.some((n) => n.includes('vision_model'))).toBe(false);
  });

  it('refuses to export a module with lora_A but no lora_B', () => {
    const arrays = fakeAdapter().filter((a) => !a.name.endsWith('layers.1.self_attn.v_proj.lora_B.weight'));
    expect(() => exportPeftAdapter(arrays, { baseModel: 'm', lora })).toThrow(
      /base_model\.model\.model\.text_model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight is missing/,
    );
  });
});

describe('PEFT import', () => {
  it('round trip: same tensors, same LoRA settings, parts rebuilt', async () => {
    const arrays = fakeAdapter(3, { textLora: true, visionLora: true, connector: 'lora' }, { ...lora, rsLora: true });
    const files = exportPeftAdapter(arrays, { baseModel: 'base', lora: { ...lora, rsLora: true } });
    const imp = await importPeftAdapter(files.configJson, files.weights, config);
    expect(imp.baseModel).toBe('base');
    expect(imp.lora).toEqual({ r: 2, alpha: 8, dropout: 0.05, rsLora: true, targetModules: ['q_proj', 'v_proj'] });
    expect(imp.parts).toEqual({ textLora: true, visionLora: true, connector: 'lora' });
    expect(imp.arrays.map((a) => a.name)).toEqual(arrays.map((a) => a.name));
    imp.arrays.forEach((a, i) => {
      expect(a.shape).toEqual(arrays[i].shape);
      expect(Array.from(a.data)).toEqual(Array.from(arrays[i].data));
    });
    // The rebuilt parts + spec target exactly the file's modules.
    expect(adapterTargets(config, imp.parts, imp.lora).lora.map((m) => m.name)).toEqual(imp.modules.lora);
  });

  async function importWith(mutate: (a: NamedArray[]) => NamedArray[], cfgPatch: Record<string, unknown> = {}) {
    const files = exportPeftAdapter(fakeAdapter(), { baseModel: 'm', lora });
    const cfg = { ...JSON.parse(files.configJson), ...cfgPatch };
    const weights = writeSafetensors(mutate(fakeAdapter()));
    return importPeftAdapter(cfg, weights, config);
  }

  it('malformed adapters give errors naming the file and the key or field', async () => {
    const wrongShape = (a: NamedArray[]) =>
      a.map((x) => (x.name.endsWith('layers.0.self_attn.q_proj.lora_A.weight') ? { ...x, shape: [2, 16], data: x.data.subarray(0, 32) } : x));
    await expect(importWith(wrongShape)).rejects.toThrow(
      /adapter_model\.safetensors: tensor base_model\.model\.model\.text_model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[2, 16\], expected \[2, 32\]/,
    );
    await expect(importWith((a) => a.filter((x) => !x.name.endsWith('layers.0.self_attn.q_proj.lora_B.weight')))).rejects.toThrow(
      /layers\.0\.self_attn\.q_proj\.lora_B\.weight is missing \(its lora_A is present\)/,
    );
    const foreign = (a: NamedArray[]) => [...a, { name: 'base_model.model.model.text_model.layers.9.self_attn.q_proj.lora_A.weight', shape: [2, 32], data: new Float32Array(64) }];
    await expect(importWith(foreign)).rejects.toThrow(/no LoRA-able linear module model\.text_model\.layers\.9\.self_attn\.q_proj/);
    await expect(importWith((a) => a, { peft_type: 'IA3' })).rejects.toThrow(/adapter_config\.json: field "peft_type" is "IA3"/);
    await expect(importWith((a) => a, { r: 4 })).rejects.toThrow(/has shape \[2, 32\], expected \[4, 32\] \(r = 4/);
    await expect(importWith((a) => a, { use_dora: true })).rejects.toThrow(/use_dora is true/);
    await expect(importWith((a) => a, { target_modules: ['model.text_model.layers.0.self_attn.q_proj'] })).rejects.toThrow(
      /tensor base_model\.model\.model\.text_model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight is for .*which adapter_config\.json's target_modules does not name/,
    );
    const onlyLayer0 = (a: NamedArray[]) => a.filter((x) => !x.name.includes('layers.1.'));
    await expect(importWith(onlyLayer0)).rejects.toThrow(/in some layers but not in model\.text_model\.layers\.1\.self_attn\.q_proj/);
    await expect(importPeftAdapter('{not json', new Uint8Array(8), config)).rejects.toThrow(/adapter_config\.json: not valid JSON/);
  });

  it('accepts a Python-style config whose target_modules are suffixes', async () => {
    const imp = await importWith((a) => a, { target_modules: ['q_proj', 'v_proj'], modules_to_save: ['modality_projection.proj'] });
    expect(imp.modules.full).toEqual([CONNECTOR_MODULE]);
    expect(imp.parts.connector).toBe('full');
  });
});

describe('merged export', () => {
  it('streams W + scale * B A for LoRA modules, the saved connector, and every other tensor as is', async () => {
    const base = [...randomHostTensors(config, 5)];
    const half = Math.floor(base.length / 2); // two "shards"
    const shards = [writeSafetensors(base.slice(0, half)), writeSafetensors(base.slice(half))];
    const open = () => Promise.all(shards.map((b, i) => SafetensorsFile.open(new Blob([b]), { file: `model-0000${i + 1}.safetensors` })));
    const arrays = fakeAdapter(9);
    const chunks: Uint8Array[] = [];
    for await (const c of mergedModelChunks(await open(), arrays, lora, 'F32')) chunks.push(c);
    const merged = await SafetensorsFile.open(new Blob(chunks as BlobPart[]), { file: 'merged.safetensors' });
    const out = new Map<string, Float32Array>();
    for await (const t of merged.tensors()) out.set(t.name, t.data);
    expect(out.size).toBe(base.length);

    const byName = new Map(arrays.map((a) => [a.name, a]));
    const scale = lora.alpha / lora.r;
    for (const t of base) {
      const module = t.name.replace(/\.weight$/, '');
      const a = byName.get(`base_model.model.${module}.lora_A.weight`);
      let want = t.data;
      if (a) {
        const b = byName.get(`base_model.model.${module}.lora_B.weight`)!;
        want = Float32Array.from(t.data);
        // Reference: the plain triple loop, written independently of addLoraDelta's loop order.
        const [outF, inF] = t.shape;
        for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) {
          let s = 0;
          for (let k = 0; k < lora.r; k++) s += b.data[o * lora.r + k] * a.data[k * inF + i];
          want[o * inF + i] += scale * s;
        }
        expect(Array.from(out.get(t.name)!).some((v, i) => v !== t.data[i])).toBe(true);
      } else if (module === CONNECTOR_MODULE) {
        want = byName.get(`base_model.model.${module}.weight`)!.data;
      }
      const got = out.get(t.name)!;
      let maxdiff = 0;
      for (let i = 0; i < want.length; i++) maxdiff = Math.max(maxdiff, Math.abs(got[i] - want[i]));
      expect(maxdiff, t.name).toBeLessThan(1e-6);
    }

    // BF16: half the data bytes, values within bf16 rounding.
    const bf: Uint8Array[] = [];
    for await (const c of mergedModelChunks(await open(), arrays, lora, 'BF16')) bf.push(c);
    const mbf = await SafetensorsFile.open(new Blob(bf as BlobPart[]), { file: 'merged-bf16.safetensors' });
    expect(mbf.header.tensors.every((t) => t.dtype === 'BF16')).toBe(true);
  });

  it('names the module when the base model lacks it', async () => {
    const other = tinyConfig({ lm_n_layers: 1 });
    const base = writeSafetensors([...randomHostTensors(other, 1)]);
    const f = await SafetensorsFile.open(new Blob([base]), { file: 'model.safetensors' });
    const gen = mergedModelChunks([f], fakeAdapter(), lora);
    await expect(gen.next()).rejects.toThrow(/merge: the base model has no model\.text_model\.layers\.1\.self_attn\.q_proj\.weight/);
  });

  it('addLoraDelta matches a dense product', () => {
    const w = new Float32Array(6); // (2, 3)
    addLoraDelta(w, Float32Array.from([1, 2, 3]), Float32Array.from([1, -1]), 2, 3, 1, 2); // A (1, 3), B (2, 1)
    expect(Array.from(w)).toEqual([2, 4, 6, -2, -4, -6]);
  });
});
