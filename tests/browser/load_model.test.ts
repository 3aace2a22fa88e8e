// Loading the tiny fixture model (public/models/tiny/, written by `npm run fixtures`) onto real
// WebGPU through the dev server: f32/q8/q4 storage, exact values on the GPU, host copies
// released, sharded BF16, and the errors a user sees for missing files, an unsupported
// architecture and broken checkpoints.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngineBackend } from '../../src/engine/backend';
import { loadModel } from '../../src/engine/load/load_model';
import { quantizeQ4, quantizeQ8, chooseQ4GroupSize } from '../../src/engine/load/quantize';
import { writeSafetensors } from '../../src/engine/load/safetensors';
import { FolderSource, UrlSource } from '../../src/engine/load/sources';
import { parameterCount } from '../../src/engine/load/weight_names';
import { tinyModelConfig, tinyModelTensors } from '../../scripts/fixtures/tiny_model';
import { expectClose } from '../util/compare';

beforeAll(async () => {
  await initEngineBackend();
});

const ref = new Map(tinyModelTensors().map((t) => [t.name, t]));

/** tfjs-webgpu keeps a tensor's values on the host until uploaded; after loading there must be none. */
function hostCopy(t: tf.Tensor): unknown {
  const backend = tf.backend() as unknown as { tensorMap: { get(id: object): { values: unknown; resource: unknown } } };
  return backend.tensorMap.get(t.dataId).values;
}

async function filesOf(base: string, names: string[]): Promise<File[]> {
  return Promise.all(names.map(async (n) => new File([await (await fetch(base + n)).blob()], n)));
}

const TINY_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'processor_config.json'];

describe('loadModel on WebGPU from /models/tiny/', () => {
  it('loads f32 weights exactly, GPU-resident, and frees them on dispose', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const before = tf.memory().numTensors;
    const m = await loadModel(new UrlSource('/models/tiny/'), { quantization: 'f32' });
    try {
      expect(m.config).toEqual(tinyModelConfig());
      expect(m.weights.gpuBytes()).toBe(parameterCount(m.config) * 4);
      expect(m.files.tokenizerJson).not.toBeNull();
      expect(m.files.chatTemplate).toBeUndefined(); // the template lives in tokenizer_config.json
      const q = m.weights.linear('model.text_model.layers.1.self_attn.q_proj');
      if (q.kind !== 'f32') throw new Error('expected f32');
      expect(hostCopy(q.w)).toBeNull();
      expect(await q.w.data()).toEqual(ref.get('model.text_model.layers.1.self_attn.q_proj.weight')!.data);
      const patch = m.weights.linear('model.vision_model.embeddings.patch_embedding');
      expect([patch.outF, patch.inF]).toEqual([32, 3 * 8 * 8]);
      expect(await patch.bias!.data()).toEqual(ref.get('model.vision_model.embeddings.patch_embedding.bias')!.data);
      expect(hostCopy(m.weights.tensor('model.text_model.norm.weight'))).toBeNull();
    } finally {
      m.weights.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stores q8 and q4 packings bit-exactly on the GPU, smaller than f32', async () => {
    const name = 'model.text_model.layers.0.mlp.gate_proj';
    const w = ref.get(`${name}.weight`)!;
    const [outF, inF] = w.shape;
    for (const quantization of ['q8', 'q4'] as const) {
      const m = await loadModel(new UrlSource('/models/tiny/'), { quantization });
      try {
        const lw = m.weights.linear(name);
        expect(lw.kind).toBe(quantization);
        if (lw.kind === 'q8') {
          const cpu = quantizeQ8(w.data, outF, inF);
          expect(hostCopy(lw.q)).toBeNull();
          expect(await lw.q.data()).toEqual(cpu.q);
          expect(await lw.scale.data()).toEqual(cpu.scale);
        } else if (lw.kind === 'q4') {
          const gs = chooseQ4GroupSize(inF);
          expect(lw.groupSize).toBe(gs);
          const cpu = quantizeQ4(w.data, outF, inF, gs);
          expect(await lw.q.data()).toEqual(cpu.q);
          expect(await lw.scale.data()).toEqual(cpu.scale);
        }
        expect(m.weights.linear('lm_head').kind).toBe(quantization);
        expect(m.weights.gpuBytes()).toBeLessThan(parameterCount(m.config) * 4 * (quantization === 'q8' ? 0.5 : 0.35));
      } finally {
        m.weights.dispose();
      }
    }
  });

  it('loads the sharded BF16 copy through its index', async () => {
    const m = await loadModel(new UrlSource('/models/tiny/bf16-sharded/'), { quantization: 'f32' });
    try {
      expect(m.weightFiles).toHaveLength(2);
      const t = m.weights.tensor('model.vision_model.encoder.layers.1.mlp.fc2.weight');
      expectClose(await t.data(), ref.get('model.vision_model.encoder.layers.1.mlp.fc2.weight')!.data, 1e-6, 2 ** -8, 'bf16 fc2');
    } finally {
      m.weights.dispose();
    }
  });
});

describe('loadModel errors', () => {
  it('names a file missing from a URL source (dev server fallback or 404)', async () => {
    await expect(loadModel(new UrlSource('/models/does-not-exist/'), { quantization: 'f32' })).rejects.toThrow(
      /^file config\.json is missing from \/models\/does-not-exist\/ \((the server answered with an HTML page instead|HTTP 404)\)$/,
    );
  });

  it('names the field of an unsupported architecture', async () => {
    const files = await filesOf('/models/tiny/', TINY_FILES);
    const cfg = JSON.parse(await files[0].text());
    cfg.architectures = ['LlavaForConditionalGeneration'];
    files[0] = new File([JSON.stringify(cfg)], 'config.json');
    await expect(loadModel(new FolderSource(files), { quantization: 'f32' })).rejects.toThrow(
      'config.json (the picked files): architectures is ["LlavaForConditionalGeneration"]; only Idefics3ForConditionalGeneration is supported',
    );
  });

  it('names a wrong-shaped and a missing weight and uploads nothing', async () => {
    const files = await filesOf('/models/tiny/', TINY_FILES);
    const before = tf.memory().numTensors;
    const shaped = tinyModelTensors().map((t) => (t.name === 'lm_head.weight' ? { ...t, shape: [t.shape[1], t.shape[0]] } : t));
    files[1] = new File([writeSafetensors(shaped)], 'model.safetensors');
    const V = tinyModelConfig().lm_vocab_size;
    await expect(loadModel(new FolderSource(files), { quantization: 'q8' })).rejects.toThrow(
      `model.safetensors (the picked files): weight lm_head.weight has shape [48, ${V}], but config.json implies [${V}, 48]`,
    );
    const missing = tinyModelTensors().filter((t) => t.name !== 'model.vision_model.encoder.layers.0.self_attn.k_proj.bias');
    files[1] = new File([writeSafetensors(missing)], 'model.safetensors');
    await expect(loadModel(new FolderSource(files), { quantization: 'q4' })).rejects.toThrow(
      'model.safetensors (the picked files): weight model.vision_model.encoder.layers.0.self_attn.k_proj.bias [32] is missing',
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
