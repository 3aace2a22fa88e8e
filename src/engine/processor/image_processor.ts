// Idefics3 image preprocessing as pure functions on pixel arrays, so node tests run it and the
// worker needs neither canvas resampling nor onnxruntime (transformers.js's Idefics3ImageProcessor
// resizes through onnxruntime ops and canvas/sharp, whose filters differ from PIL's).
//
// Written after transformers' Python Idefics3ImageProcessor (image_processing_idefics3.py):
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/image_processing_idefics3.py
//   1. drop alpha (PIL convert('RGB'))
//   2. resize so the longest edge = size.longest_edge, the other edge rounded up to even
//      (small images are scaled UP too, as in Python)
//   3. split: resize to multiples of max_image_size (the vision tower's side), cut rows x cols
//      tiles, then add a global view resized to max_image_size x max_image_size; an image that
//      already fits is one tile and rows = cols = 0. Without splitting: one max x max view.
//   4. rescale (x * rescale_factor) and normalise ((x - mean) / std).
// Every resize is PIL's separable convolution resampler on uint8 (horizontal pass, round to
// uint8, vertical pass), reproduced with its fixed-point arithmetic; see resizeRgb.
//
// Letters: N tiles, H = W = S tile side (max_image_size), h/w image height/width.

/** Decoded image, (h, w, 4) RGBA bytes row-major, as ImageData holds it. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** (h, w, 3) RGB bytes row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Idefics3ImageConfig {
  doResize: boolean;
  /** size.longest_edge: step 2's target. */
  longestEdge: number;
  doImageSplitting: boolean;
  /** max_image_size.longest_edge: the tile side S, = the vision tower's image size. */
  maxImageSize: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** PIL resampling filter id: 1 Lanczos (SmolVLM), 2 bilinear, 3 bicubic. */
  resample: number;
}

export interface ProcessedImage {
  /** (N, 3, S, S) normalised pixels: tiles row-major, then the global view. */
  pixelValues: Float32Array;
  nTiles: number;
  /** Tile grid; 0 x 0 when the image was not split (one global view only). */
  rows: number;
  cols: number;
  tileSize: number;
}

function field<T>(json: Record<string, unknown>, name: string, file: string, ok: (v: unknown) => boolean, dflt?: T): T {
  const v = json[name];
  if (v === undefined && dflt !== undefined) return dflt;
  if (!ok(v)) throw new Error(`${file}: field "${name}" is missing or invalid (got ${JSON.stringify(v)})`);
  return v as T;
}

const isBool = (v: unknown) => typeof v === 'boolean';
const isPosNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isTriple = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number');
const hasLongestEdge = (v: unknown) =>
  typeof v === 'object' && v !== null && Number.isInteger((v as Record<string, unknown>).longest_edge) && ((v as { longest_edge: number }).longest_edge > 0);

/** Read preprocessor_config.json (Idefics3ImageProcessor fields); errors name the file and field. */
export function parseImageProcessorConfig(json: unknown, file = 'preprocessor_config.json'): Idefics3ImageConfig {
  if (typeof json !== 'object' || json === null) throw new Error(`${file}: expected a JSON object`);
  const j = json as Record<string, unknown>;
  const type = j.image_processor_type;
  if (type !== undefined && type !== 'Idefics3ImageProcessor' && type !== 'Idefics3ImageProcessorFast' && type !== 'SmolVLMImageProcessor') {
    throw new Error(`${file}: field "image_processor_type" is ${JSON.stringify(type)}; only Idefics3ImageProcessor is supported`);
  }
  const size = field<{ longest_edge: number }>(j, 'size', file, hasLongestEdge);
  const maxSize = field<{ longest_edge: number }>(j, 'max_image_size', file, hasLongestEdge);
  const resample = field<number>(j, 'resample', file, (v) => v === 1 || v === 2 || v === 3, 1);
  return {
    doResize: field(j, 'do_resize', file, isBool, true),
    longestEdge: size.longest_edge,
    doImageSplitting: field(j, 'do_image_splitting', file, isBool, true),
    maxImageSize: maxSize.longest_edge,
    doRescale: field(j, 'do_rescale', file, isBool, true),
    rescaleFactor: field(j, 'rescale_factor', file, isPosNum, 1 / 255),
    doNormalize: field(j, 'do_normalize', file, isBool, true),
    imageMean: field(j, 'image_mean', file, isTriple, [0.5, 0.5, 0.5]),
    imageStd: field(j, 'image_std', file, isTriple, [0.5, 0.5, 0.5]),
    resample,
  };
}

/** RGBA -> RGB by dropping alpha, as PIL's convert('RGB') does (no compositing). */
export function rgbaToRgb(img: RgbaImage): RgbImage {
  const { width: w, height: h, data } = img;
  if (data.length !== w * h * 4) throw new Error(`image: ${w}x${h} RGBA needs ${w * h * 4} bytes, got ${data.length}`);
  const out = new Uint8Array(w * h * 3); // (h, w, 3)
  for (let p = 0; p < w * h; p++) {
    out[p * 3] = data[p * 4];
    out[p * 3 + 1] = data[p * 4 + 1];
    out[p * 3 + 2] = data[p * 4 + 2];
  }
  return { width: w, height: h, data: out };
}

// ---- PIL's resampler (Pillow src/libImaging/Resample.c), reimplemented ----

interface Filter {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<number, Filter> = {
  1: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) }, // Lanczos-3
  2: { support: 1, fn: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) }, // bilinear (triangle)
  3: {
    support: 2,
    fn: (x) => {
      // Keys cubic with a = -0.5, as PIL.
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** Per output index: first input index, tap count, and fixed-point weights (outSize, kSize). */
function coefficients(inSize: number, outSize: number, filter: Filter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const kSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2); // (outSize, 2): xmin, count
  const weights = new Int32Array(outSize * kSize); // (outSize, kSize)
  const pre = new Float64Array(kSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      pre[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? pre[x] / ww : pre[x];
      weights[xx * kSize + x] = Math.trunc(k < 0 ? k * ONE - 0.5 : k * ONE + 0.5);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, kSize };
}

function clip8(ss: number): number {
  if (ss >= ONE * 256) return 255;
  if (ss <= 0) return 0;
  return Math.floor(ss / ONE);
}

/** One separable pass along x (horizontal) or y, uint8 in, uint8 out. */
function resamplePass(src: RgbImage, outSize: number, horizontal: boolean, filter: Filter): RgbImage {
  const inSize = horizontal ? src.width : src.height;
  const { bounds, weights, kSize } = coefficients(inSize, outSize, filter);
  const w = horizontal ? outSize : src.width;
  const h = horizontal ? src.height : outSize;
  const out = new Uint8Array(w * h * 3); // (h, w, 3)
  const sd = src.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = horizontal ? x : y;
      const min = bounds[o * 2];
      const n = bounds[o * 2 + 1];
      let s0 = ONE / 2;
      let s1 = ONE / 2;
      let s2 = ONE / 2;
      for (let k = 0; k < n; k++) {
        const wk = weights[o * kSize + k];
        const p = horizontal ? (y * src.width + min + k) * 3 : ((min + k) * src.width + x) * 3;
        s0 += sd[p] * wk;
        s1 += sd[p + 1] * wk;
        s2 += sd[p + 2] * wk;
      }
      const q = (y * w + x) * 3;
      out[q] = clip8(s0);
      out[q + 1] = clip8(s1);
      out[q + 2] = clip8(s2);
    }
  }
  return { width: w, height: h, data: out };
}

/** PIL Image.resize((outW, outH), resample) on an RGB uint8 image: horizontal pass first, then vertical. */
export function resizeRgb(src: RgbImage, outW: number, outH: number, resample = 1): RgbImage {
  const filter = FILTERS[resample];
  if (!filter) throw new Error(`image resize: resample ${resample} is not supported (1 Lanczos, 2 bilinear, 3 bicubic)`);
  if (outW < 1 || outH < 1) throw new Error(`image resize: target ${outW}x${outH} is empty`);
  let img = src;
  if (outW !== img.width) img = resamplePass(img, outW, true, filter);
  if (outH !== img.height) img = resamplePass(img, outH, false, filter);
  return img === src ? { width: src.width, height: src.height, data: src.data.slice() } : img;
}

// ---- Idefics3 geometry ----

/** Step 2: longest edge -> `longestEdge`, the other scaled and rounded up to even (Python: int(), then +1 if odd). */
export function sizeForLongestEdge(h: number, w: number, longestEdge: number): { height: number; width: number } {
  const aspect = w / h;
  let height: number;
  let width: number;
  if (w >= h) {
    width = longestEdge;
    height = Math.trunc(width / aspect);
    if (height % 2 !== 0) height += 1;
  } else {
    height = longestEdge;
    width = Math.trunc(height * aspect);
    if (width % 2 !== 0) width += 1;
  }
  // Python also caps at 4096 (MAX_IMAGE_SIZE); longest_edge never exceeds it for SmolVLM.
  return { height: Math.max(height, 1), width: Math.max(width, 1) };
}

/** Step 3: both sides up to multiples of the tile side, keeping the aspect ratio as Python does. */
export function sizeForVisionEncoder(h: number, w: number, tile: number): { height: number; width: number } {
  const aspect = w / h;
  let height: number;
  let width: number;
  if (w >= h) {
    width = Math.ceil(w / tile) * tile;
    height = Math.ceil(Math.trunc(width / aspect) / tile) * tile;
  } else {
    height = Math.ceil(h / tile) * tile;
    width = Math.ceil(Math.trunc(height * aspect) / tile) * tile;
  }
  return { height, width };
}

/** Copy rect [y0, y0+hh) x [x0, x0+ww) out of an RGB image. */
function crop(img: RgbImage, x0: number, y0: number, ww: number, hh: number): RgbImage {
  const out = new Uint8Array(ww * hh * 3);
  for (let y = 0; y < hh; y++) {
    const from = ((y0 + y) * img.width + x0) * 3;
    out.set(img.data.subarray(from, from + ww * 3), y * ww * 3);
  }
  return { width: ww, height: hh, data: out };
}

/** Tiles (row-major) then the global view, as uint8 RGB frames, and the grid. */
export function splitImage(img: RgbImage, tile: number, resample: number): { frames: RgbImage[]; rows: number; cols: number } {
  const { width: w, height: h } = img;
  if (h <= tile && w <= tile) return { frames: [img], rows: 0, cols: 0 };
  const rows = Math.ceil(h / tile);
  const cols = Math.ceil(w / tile);
  const th = Math.ceil(h / rows);
  const tw = Math.ceil(w / cols);
  const frames: RgbImage[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // The last row/column is anchored to the far edge, as in Python.
      const y0 = r === rows - 1 ? h - th : r * th;
      const x0 = c === cols - 1 ? w - tw : c * tw;
      frames.push(crop(img, x0, y0, tw, th));
    }
  }
  frames.push(h !== tile || w !== tile ? resizeRgb(img, tile, tile, resample) : img);
  return { frames, rows, cols };
}

/** Steps 1-4 for one image. */
export function preprocessImage(img: RgbaImage, cfg: Idefics3ImageConfig, opts: { doImageSplitting?: boolean } = {}): ProcessedImage {
  const S = cfg.maxImageSize;
  let rgb = rgbaToRgb(img);
  if (cfg.doResize) {
    const t = sizeForLongestEdge(rgb.height, rgb.width, cfg.longestEdge);
    rgb = resizeRgb(rgb, t.width, t.height, cfg.resample);
  }
  let frames: RgbImage[];
  let rows = 0;
  let cols = 0;
  if (opts.doImageSplitting ?? cfg.doImageSplitting) {
    const t = sizeForVisionEncoder(rgb.height, rgb.width, S);
    rgb = resizeRgb(rgb, t.width, t.height, cfg.resample);
    ({ frames, rows, cols } = splitImage(rgb, S, cfg.resample));
  } else {
    frames = [resizeRgb(rgb, S, S, cfg.resample)];
  }
  for (const f of frames) {
    if (f.width !== S || f.height !== S) throw new Error(`image processor: tile is ${f.width}x${f.height}, expected ${S}x${S}`);
  }

  const N = frames.length;
  const plane = S * S;
  const out = new Float32Array(N * 3 * plane); // (N, 3, S, S)
  const scale = cfg.doRescale ? cfg.rescaleFactor : 1;
  const mean = cfg.imageMean.map((m) => Math.fround(m));
  const std = cfg.imageStd.map((s) => Math.fround(s));
  frames.forEach((f, n) => {
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        // (h, w, 3) uint8 -> (3, h, w) float: Python rescales in float64, casts to float32, normalises in float32.
        let v = Math.fround(f.data[p * 3 + c] * scale);
        if (cfg.doNormalize) v = Math.fround(Math.fround(v - mean[c]) / std[c]);
        out[(n * 3 + c) * plane + p] = v;
      }
    }
  });
  return { pixelValues: out, nTiles: N, rows, cols, tileSize: S };
}
