// Idefics3 image preprocessing on synthetic pixels: geometry, PIL resampling, tile order, normalisation.
import { describe, expect, it } from 'vitest';
import {
  parseImageProcessorConfig,
  preprocessImage,
  resizeRgb,
  sizeForLongestEdge,
  sizeForVisionEncoder,
  type RgbaImage,
} from '../../src/engine/processor/image_processor';
import { makeTinyTokenizerFiles } from '../../scripts/fixtures/tokenizer';

const tinyCfg = parseImageProcessorConfig(JSON.parse(makeTinyTokenizerFiles().files['preprocessor_config.json']));

/** (h, w, 4) image whose pixel (x, y) has colour f(x, y). */
function image(w: number, h: number, f: (x: number, y: number) => [number, number, number]): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [r, g, b] = f(x, y);
      data.set([r, g, b, 255], (y * w + x) * 4);
    }
  return { width: w, height: h, data };
}

/** Pixel (c, y, x) of tile n in (N, 3, S, S). */
const at = (pv: Float32Array, S: number, n: number, c: number, y: number, x: number) => pv[((n * 3 + c) * S + y) * S + x];

describe('Idefics3 geometry (Python image_processing_idefics3.py)', () => {
  it('longest edge to size.longest_edge, other edge truncated then rounded up to even; small images grow', () => {
    expect(sizeForLongestEdge(512, 1024, 2048)).toEqual({ height: 1024, width: 2048 });
    expect(sizeForLongestEdge(333, 1000, 64)).toEqual({ height: 22, width: 64 }); // int(21.3) = 21 -> 22
    expect(sizeForLongestEdge(1000, 333, 64)).toEqual({ height: 64, width: 22 });
    expect(sizeForLongestEdge(10, 10, 2048)).toEqual({ height: 2048, width: 2048 });
  });

  it('multiples of the tile side: SmolVLM-256M turns any square image into 4x4 tiles of 512', () => {
    expect(sizeForVisionEncoder(2048, 2048, 512)).toEqual({ height: 2048, width: 2048 });
    expect(sizeForVisionEncoder(22, 64, 32)).toEqual({ height: 32, width: 64 });
    expect(sizeForVisionEncoder(1100, 1000, 512)).toEqual({ height: 1536, width: 1536 }); // width: int(1536*0.909)=1396 -> 1536
  });
});

describe('PIL-compatible resampling', () => {
  it('bilinear 2 -> 1 px rounds the half up, as PIL fixed point does', () => {
    const out = resizeRgb({ width: 2, height: 1, data: Uint8Array.from([10, 0, 255, 21, 0, 255]) }, 1, 1, 2);
    expect(Array.from(out.data)).toEqual([16, 0, 255]);
  });

  it('Lanczos keeps a constant image constant, and a horizontal ramp monotone, up and down', () => {
    const flat = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).fill(200) };
    for (const [w, h] of [[3, 2], [20, 13]]) expect(new Set(resizeRgb(flat, w, h, 1).data)).toEqual(new Set([200]));
    const ramp = { width: 16, height: 1, data: Uint8Array.from({ length: 48 }, (_, i) => Math.floor(i / 3) * 16) };
    const up = resizeRgb(ramp, 40, 1, 1);
    for (let x = 1; x < 40; x++) expect(up.data[x * 3]).toBeGreaterThanOrEqual(up.data[(x - 1) * 3] - 2); // lobes ring by at most a little
    expect(up.data[0]).toBeLessThan(20);
    expect(up.data[39 * 3]).toBeGreaterThan(225);
  });

  it('rejects resample modes it does not implement, naming the field', () => {
    expect(() => parseImageProcessorConfig({ ...JSON.parse(makeTinyTokenizerFiles().files['preprocessor_config.json']), resample: 0 })).toThrow(
      /preprocessor_config.json: field "resample"/,
    );
    expect(() => parseImageProcessorConfig({ size: {} })).toThrow(/field "size"/);
  });
});

describe('preprocessImage', () => {
  it('tiles row-major then the global view, normalised to [-1, 1]', () => {
    // 64x32: already at longest edge 64 and multiples of 32, so tiles are exact crops.
    const red = [255, 0, 0] as [number, number, number];
    const blue = [0, 0, 255] as [number, number, number];
    const p = preprocessImage(image(64, 32, (x) => (x < 32 ? red : blue)), tinyCfg);
    expect([p.rows, p.cols, p.nTiles, p.tileSize]).toEqual([1, 2, 3, 32]);
    expect(p.pixelValues.length).toBe(3 * 3 * 32 * 32); // (N, 3, S, S)
    for (const [y, x] of [[0, 0], [31, 31], [16, 5]]) {
      expect([0, 1, 2].map((c) => at(p.pixelValues, 32, 0, c, y, x))).toEqual([1, -1, -1]);
      expect([0, 1, 2].map((c) => at(p.pixelValues, 32, 1, c, y, x))).toEqual([-1, -1, 1]);
    }
    // Global view: 64x32 squeezed to 32x32, left red, right blue.
    expect(at(p.pixelValues, 32, 2, 0, 10, 2)).toBe(1);
    expect(at(p.pixelValues, 32, 2, 2, 10, 29)).toBe(1);
  });

  it('rescale and normalise: (v/255 - 0.5)/0.5 for a flat colour', () => {
    const p = preprocessImage(image(10, 10, () => [128, 64, 0]), tinyCfg);
    // 10x10 grows to 64x64: 2x2 tiles + global.
    expect([p.rows, p.cols, p.nTiles]).toEqual([2, 2, 5]);
    const want = [128, 64, 0].map((v) => (v / 255 - 0.5) / 0.5);
    for (let n = 0; n < 5; n++) for (let c = 0; c < 3; c++) expect(at(p.pixelValues, 32, n, c, 7, 9)).toBeCloseTo(want[c], 6);
  });

  it('without splitting: one max x max view, grid 0x0', () => {
    const p = preprocessImage(image(50, 20, () => [0, 255, 0]), tinyCfg, { doImageSplitting: false });
    expect([p.rows, p.cols, p.nTiles, p.pixelValues.length]).toEqual([0, 0, 1, 3 * 32 * 32]);
    expect(at(p.pixelValues, 32, 0, 1, 31, 31)).toBe(1);
  });

  it('alpha is dropped, not composited (PIL convert("RGB"))', () => {
    const img = image(32, 32, () => [0, 0, 0]);
    for (let i = 3; i < img.data.length; i += 4) img.data[i] = 0;
    const p = preprocessImage(img, { ...tinyCfg, longestEdge: 32 });
    expect([p.nTiles, at(p.pixelValues, 32, 0, 0, 3, 3)]).toEqual([1, -1]);
  });
});
