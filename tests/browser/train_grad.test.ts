// The whole tiny model's LoRA gradients: our kernels' backward (custom ops) against tfjs
// autodiff of the stock-ops path, same weights, same adapters, same padded batch with images.
// lora_B starts at zero in PEFT, which would make every lora_A gradient zero; the test gives
// B random values first so that both factors' gradients are exercised.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { initEngineBackend } from '../../src/engine/backend';
import { loadModel, type LoadedModel } from '../../src/engine/load/load_model';
import { UrlSource } from '../../src/engine/load/sources';
import { Idefics3Model } from '../../src/engine/model/vlm';
import { createCustomOps } from '../../src/engine/ops/custom_ops';
import { createStockOps } from '../../src/engine/ops/stock_ops';
import { buildModelInputs } from '../../src/engine/processor/build_inputs';
import type { RgbaImage } from '../../src/engine/processor/image_processor';
import { createProcessor, type Processor } from '../../src/engine/processor/processor';
import { AdapterSet, DEFAULT_LORA_TARGETS } from '../../src/engine/train/lora';
import { batchLoss, collateBatch, padTokenId } from '../../src/engine/train/loss';
import type { Quantization } from '../../src/engine/weights';
import { expectClose } from '../util/compare';

function picture(seed: number): RgbaImage {
  const data = new Uint8ClampedArray(24 * 20 * 4);
  for (let i = 0; i < 24 * 20; i++) data.set([(i * 7 + seed * 50) % 256, (i * 13) % 256, (seed * 90 + i) % 256, 255], 4 * i);
  return { width: 24, height: 20, data };
}

let proc: Processor;
const loaded: Partial<Record<Quantization, LoadedModel>> = {};

beforeAll(async () => {
  await initEngineBackend();
  for (const q of ['f32', 'q8'] as const) loaded[q] = await loadModel(new UrlSource('/models/tiny/'), { quantization: q });
  const f = loaded.f32!.files;
  proc = await createProcessor(
    { tokenizerJson: f.tokenizerJson, tokenizerConfig: f.tokenizerConfig, preprocessorConfig: f.preprocessorConfig, processorConfig: f.processorConfig ?? undefined, chatTemplate: f.chatTemplate },
    loaded.f32!.config,
  );
});
afterAll(() => {
  for (const l of Object.values(loaded)) l?.weights.dispose();
});

describe('LoRA gradients of the whole tiny model', () => {
  for (const q of ['f32', 'q8'] as const) {
    it(`custom kernels' backward equals stock autodiff (${q} base, text + vision LoRA, connector full)`, async () => {
      const { weights, config } = loaded[q]!;
      const adapters = new AdapterSet(
        weights,
        { textLora: true, connector: 'full', visionLora: true },
        { r: 4, alpha: 8, dropout: 0, rsLora: false, targetModules: DEFAULT_LORA_TARGETS },
        7,
      );
      const vars = adapters.variables();
      vars.forEach((v, i) => {
        if (v.name.endsWith('lora_B.weight')) v.variable.assign(tf.randomNormal(v.variable.shape, 0, 0.05, 'float32', 100 + i));
      });
      const samples = [
        buildModelInputs(proc, [{ role: 'user', text: '<image>What is it?' }, { role: 'assistant', text: 'a red box' }], [picture(1)], { mode: 'train', doImageSplitting: false }),
        buildModelInputs(proc, [{ role: 'user', text: 'And <image> this one, please?' }, { role: 'assistant', text: 'blue' }], [picture(2)], { mode: 'train', doImageSplitting: false }),
      ];
      const batch = collateBatch(samples, padTokenId(config));
      const list = vars.map((v) => v.variable);
      const grads = async (ops: ReturnType<typeof createStockOps>) => {
        const model = new Idefics3Model(weights, ops, { adapters });
        const { value, grads } = tf.variableGrads(() => batchLoss(model, batch), list);
        const out = { loss: (await value.data())[0], g: await Promise.all(list.map((v) => grads[v.name].data() as Promise<Float32Array>)) };
        tf.dispose([value, ...Object.values(grads)]);
        return out;
      };
      const stock = await grads(createStockOps());
      const custom = await grads(createCustomOps());
      expectClose([custom.loss], [stock.loss], 1e-4, 1e-4, 'loss');
      let nonZero = 0;
      vars.forEach((v, i) => {
        const ref = stock.g[i];
        const scale = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        if (scale > 0) nonZero++;
        expectClose(custom.g[i], ref, 2e-3 * scale + 1e-7, 2e-2, v.name);
      });
      // every trained module receives a gradient (lora_A too, since B is non-zero)
      if (nonZero !== vars.length) throw new Error(`${vars.length - nonZero} of ${vars.length} trainable tensors got an all-zero gradient`);
      adapters.dispose();
    }, 240_000);
  }
});
