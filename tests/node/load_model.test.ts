// The tiny fixture model and loadModel end to end on tfjs' cpu backend: byte-identical fixture
// generation, loading from picked files (single F32 and sharded BF16 checkpoints), and the
// errors a user sees for a broken folder (each naming the file and the weight or field).
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { configFromHub } from '../../src/engine/load/hub_config';
import { loadModel } from '../../src/engine/load/load_model';
import { SafetensorsFile, writeSafetensors, type WritableTensor } from '../../src/engine/load/safetensors';
import { FolderSource } from '../../src/engine/load/sources';
import { expectedWeightShapes, parameterCount } from '../../src/engine/load/weight_names';
import { makeTinyModelFiles, tinyModelConfig, tinyModelTensors } from '../../scripts/fixtures/tiny_model';
import { makeTinyTokenizerFiles } from '../../scripts/fixtures/tokenizer';
import { expectClose } from '../util/compare';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function hashFiles(files: Record<string, string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(name);
    h.update(typeof content === 'string' ? Buffer.from(content) : content);
  }
  return h.digest('hex');
}

function asFiles(files: Record<string, string | Uint8Array>): File[] {
  return Object.entries(files).map(([name, content]) => new File([content as BlobPart], name));
}

describe('tiny fixture model', () => {
  it('is byte-identical on every run', () => {
    expect(hashFiles(makeTinyModelFiles())).toBe(hashFiles(makeTinyModelFiles()));
    expect(hashFiles(makeTinyModelFiles('bf16-sharded'))).toBe(hashFiles(makeTinyModelFiles('bf16-sharded')));
  });

  it('has a Hub-layout config matching the tokenizer, and a few hundred KB of weights', async () => {
    const files = makeTinyModelFiles();
    const tok = makeTinyTokenizerFiles();
    const raw = JSON.parse(files['config.json'] as string);
    expect(raw.model_type).toBe('idefics3');
    expect(raw.architectures).toEqual(['Idefics3ForConditionalGeneration']);
    const c = configFromHub(raw);
    expect(c).toEqual(tinyModelConfig());
    expect(c.lm_vocab_size).toBe(tok.vocabSize);
    expect(c.image_token_id).toBe(tok.specialIds.image);
    expect(c.lm_n_heads % c.lm_n_kv_heads).toBe(0);
    expect(c.lm_n_kv_heads).toBeLessThan(c.lm_n_heads); // GQA
    const st = files['model.safetensors'] as Uint8Array;
    expect(st.byteLength).toBeLessThan(500_000);
    const f = await SafetensorsFile.open(new Blob([st as BlobPart]), { file: 'model.safetensors' });
    const shapes = expectedWeightShapes(c);
    expect(new Set(f.header.tensors.map((t) => t.name))).toEqual(new Set(shapes.keys()));
    for (const t of f.header.tensors) expect(t.shape, t.name).toEqual(shapes.get(t.name));
    for (const name of Object.keys(tok.files)) expect(files[name]).toBe(tok.files[name]);
  });
});

describe('loadModel from picked files', () => {
  it('loads the F32 checkpoint with every processor file, f32 and q8', async () => {
    const ref = new Map(tinyModelTensors().map((t) => [t.name, t.data]));
    for (const quantization of ['f32', 'q8'] as const) {
      const progress: string[] = [];
      const m = await loadModel(new FolderSource(asFiles(makeTinyModelFiles())), {
        quantization,
        onProgress: (p) => progress.push(`${p.phase}:${p.file}`),
      });
      try {
        expect(m.config).toEqual(tinyModelConfig());
        expect(m.paramCount).toBe(parameterCount(m.config));
        expect(m.weightFiles).toEqual(['model.safetensors']);
        // Read one tensor at a time: never more than the largest tensor (lm_head, V x 48 f32).
        expect(m.maxBufferedBytes).toBe(m.config.lm_vocab_size * 48 * 4);
        expect(m.files.tokenizerJson).toMatchObject({ model: { type: 'BPE' } });
        expect(m.files.tokenizerConfig).toMatchObject({ eos_token: '<end_of_utterance>' });
        expect(m.files.preprocessorConfig).not.toBeNull();
        expect(m.files.generationConfig).toBeNull();
        expect(progress).toContain('weights:model.safetensors');
        const up = m.weights.linear('model.text_model.layers.1.mlp.up_proj');
        expect(up.kind).toBe(quantization);
        const norm = await m.weights.tensor('model.vision_model.post_layernorm.weight').data();
        expect(norm).toEqual(ref.get('model.vision_model.post_layernorm.weight'));
        if (quantization === 'f32') expect(m.weights.gpuBytes()).toBe(m.paramCount * 4);
        else expect(m.weights.gpuBytes()).toBeLessThan(m.paramCount * 4 * 0.5);
      } finally {
        m.weights.dispose();
      }
    }
  });

  it('loads the sharded BF16 checkpoint through its index', async () => {
    const m = await loadModel(new FolderSource(asFiles(makeTinyModelFiles('bf16-sharded'))), { quantization: 'f32' });
    try {
      expect(m.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      const ref = tinyModelTensors().find((t) => t.name === 'lm_head.weight')!.data;
      const lm = m.weights.linear('lm_head');
      if (lm.kind !== 'f32') throw new Error('expected f32');
      expectClose(await lm.w.data(), ref, 1e-6, 2 ** -8, 'bf16 lm_head');
    } finally {
      m.weights.dispose();
    }
  });

  function withWeights(tensors: WritableTensor[]): File[] {
    const files = { ...makeTinyModelFiles(), 'model.safetensors': writeSafetensors(tensors) };
    return asFiles(files);
  }

  it('names the weight, both shapes and the file for a wrong shape, before reading any data', async () => {
    const ts = tinyModelTensors().map((t) =>
      t.name === 'model.text_model.layers.0.mlp.up_proj.weight' ? { ...t, shape: [40, 96] } : t,
    );
    const before = tf.memory().numTensors;
    await expect(loadModel(new FolderSource(withWeights(ts), 'the folder "bad"'), { quantization: 'f32' })).rejects.toThrow(
      'model.safetensors (the folder "bad"): weight model.text_model.layers.0.mlp.up_proj.weight has shape [40, 96], but config.json implies [80, 48]',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names a missing weight, and an unexpected one', async () => {
    const ts = tinyModelTensors();
    await expect(
      loadModel(new FolderSource(withWeights(ts.filter((t) => t.name !== 'model.text_model.norm.weight'))), { quantization: 'q4' }),
    ).rejects.toThrow(/model\.safetensors \(the picked files\): weight model\.text_model\.norm\.weight \[48\] is missing/);
    const extra = [...ts, { name: 'model.text_model.layers.0.self_attn.q_proj.bias', shape: [48], data: new Float32Array(48) }];
    await expect(loadModel(new FolderSource(withWeights(extra)), { quantization: 'f32' })).rejects.toThrow(
      /unexpected weight model\.text_model\.layers\.0\.self_attn\.q_proj\.bias: not part of an Idefics3 model/,
    );
    // Known-ignorable extras load fine.
    const ignorable = [...ts, { name: 'model.text_model.rotary_emb.inv_freq', shape: [8], data: new Float32Array(8) }];
    const m = await loadModel(new FolderSource(withWeights(ignorable)), { quantization: 'f32' });
    expect(m.weights.has('model.text_model.rotary_emb.inv_freq')).toBe(false);
    m.weights.dispose();
  });

  it('names missing files and an unsupported architecture', async () => {
    const files = makeTinyModelFiles();
    const noConfig = asFiles(files).filter((f) => f.name !== 'config.json');
    await expect(loadModel(new FolderSource(noConfig), { quantization: 'f32' })).rejects.toThrow('file config.json is missing from the picked files');
    const noWeights = asFiles(files).filter((f) => f.name !== 'model.safetensors');
    await expect(loadModel(new FolderSource(noWeights), { quantization: 'f32' })).rejects.toThrow(
      'no weights in the picked files: neither model.safetensors nor model.safetensors.index.json was found',
    );
    const cfg = JSON.parse(files['config.json'] as string);
    cfg.architectures = ['Qwen2VLForConditionalGeneration'];
    cfg.model_type = 'qwen2_vl';
    const wrong = asFiles({ ...files, 'config.json': JSON.stringify(cfg) });
    await expect(loadModel(new FolderSource(wrong), { quantization: 'f32' })).rejects.toThrow(
      /config\.json \(the picked files\): model_type is "qwen2_vl"; only "idefics3"/,
    );
    const broken = asFiles({ ...files, 'tokenizer.json': '{"model": ' });
    await expect(loadModel(new FolderSource(broken), { quantization: 'f32' })).rejects.toThrow(/tokenizer\.json from the picked files is not valid JSON/);
  });

  it('checks shards against their index', async () => {
    const files = makeTinyModelFiles('bf16-sharded');
    const index = JSON.parse(files['model.safetensors.index.json'] as string);
    index.weight_map['model.text_model.norm.weight'] = 'model-00001-of-00002.safetensors';
    const moved = asFiles({ ...files, 'model.safetensors.index.json': JSON.stringify(index) });
    await expect(loadModel(new FolderSource(moved), { quantization: 'f32' })).rejects.toThrow(
      /model-00002-of-00002\.safetensors \(the picked files\): weight model\.text_model\.norm\.weight is in this shard but the index puts it in model-00001-of-00002\.safetensors/,
    );
    delete index.weight_map['model.text_model.norm.weight'];
    const dropped = asFiles({ ...files, 'model.safetensors.index.json': JSON.stringify(index) });
    await expect(loadModel(new FolderSource(dropped), { quantization: 'f32' })).rejects.toThrow(
      /model\.safetensors\.index\.json \(the picked files\): weight model\.text_model\.norm\.weight \[48\] is missing/,
    );
  });
});
