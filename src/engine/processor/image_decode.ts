// Blob -> RGBA pixels in a page or a worker (createImageBitmap + OffscreenCanvas), with the
// browser's colour management and alpha premultiplication turned off so the bytes are the file's
// own, as PIL reads them. Browser-only; image_processor.ts takes the result.
import type { RgbaImage } from './image_processor';

export async function decodeImage(blob: Blob, name = 'image'): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new Error(`${name}: the browser could not decode it as an image (${blob.type || 'unknown type'}, ${blob.size} bytes): ${(e as Error).message}`);
  }
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error(`${name}: no 2D canvas context available to read pixels`);
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, width, height).data; // (h, w, 4)
    return { width, height, data };
  } finally {
    bitmap.close();
  }
}
