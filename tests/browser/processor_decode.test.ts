// Browser side of the processor: Blob -> RGBA through createImageBitmap/OffscreenCanvas, and the
// whole buildModelInputs path with transformers.js's web bundle.
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/engine/processor/image_decode';
import { createProcessor } from '../../src/engine/processor/processor';
import { buildModelInputs } from '../../src/engine/processor/build_inputs';
import { makeTinyTokenizerFiles, TINY_PROCESSOR } from '../../scripts/fixtures/tokenizer';
import { tinyConfig } from '../util/tiny_config';

/** A lossless PNG whose left half is red and right half blue. */
async function pngBlob(w: number, h: number): Promise<Blob> {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) img.data.set(x < w / 2 ? [255, 0, 0, 255] : [0, 0, 255, 255], (y * w + x) * 4);
  ctx.putImageData(img, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

describe('decodeImage', () => {
  it('gives the PNG bytes back exactly', async () => {
    const img = await decodeImage(await pngBlob(6, 4));
    expect([img.width, img.height]).toEqual([6, 4]);
    expect(Array.from(img.data.slice(0, 4))).toEqual([255, 0, 0, 255]);
    expect(Array.from(img.data.slice((3 * 6 + 5) * 4, (3 * 6 + 6) * 4))).toEqual([0, 0, 255, 255]);
  });

  it('names the image when the bytes are not an image', async () => {
    await expect(decodeImage(new Blob(['not an image'], { type: 'image/png' }), 'photo.png')).rejects.toThrow(/photo.png/);
  });
});

describe('buildModelInputs in the browser', () => {
  it('decoded PNG -> tiles and expanded ids through transformers.js', async () => {
    const fx = makeTinyTokenizerFiles();
    const proc = await createProcessor(
      {
        tokenizerJson: JSON.parse(fx.files['tokenizer.json']),
        tokenizerConfig: JSON.parse(fx.files['tokenizer_config.json']),
        preprocessorConfig: JSON.parse(fx.files['preprocessor_config.json']),
        processorConfig: JSON.parse(fx.files['processor_config.json']),
      },
      tinyConfig({
        vit_img_size: TINY_PROCESSOR.imageSize,
        vit_patch_size: TINY_PROCESSOR.patchSize,
        mp_pixel_shuffle_factor: TINY_PROCESSOR.scaleFactor,
        lm_vocab_size: fx.vocabSize,
        image_token_id: fx.specialIds.image,
      }),
    );
    const img = await decodeImage(await pngBlob(64, 32));
    const inp = buildModelInputs(proc, [{ role: 'user', text: '<image>What is this?' }], [img], { mode: 'generate' });
    expect(inp.nTiles).toBe(3);
    expect(inp.inputIds.reduce((n, id) => n + (id === fx.specialIds.image ? 1 : 0), 0)).toBe(3 * TINY_PROCESSOR.imageSeqLen);
    // First tile is the red half: channel 0 = +1, channel 2 = -1 everywhere.
    const S = 32;
    expect(inp.pixelValues[0]).toBe(1);
    expect(inp.pixelValues[2 * S * S + 17]).toBe(-1);
    expect(proc.decode(inp.inputIds).endsWith('What is this?<end_of_utterance>\nAssistant:')).toBe(true);
  });
});
