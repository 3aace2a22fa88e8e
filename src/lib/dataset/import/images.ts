// Image decoding for import in the browser (page or worker): createImageBitmap reads the
// real size and proves the bytes decode. Node tests inject a fake decoder instead.

import { imageTypeFromName, sniffImageType } from './files';
import type { DecodedImage } from './types';

export async function browserDecodeImage(blob: Blob, name: string): Promise<DecodedImage> {
  const head = new Uint8Array(await blob.slice(0, 16).arrayBuffer());
  const type = sniffImageType(head) || blob.type || imageTypeFromName(name);
  if (!type) throw new Error(`"${name}" is not an image the browser can read (unrecognised file header)`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(type === blob.type ? blob : new Blob([blob], { type }));
  } catch (e) {
    throw new Error(`"${name}" could not be decoded as ${type} (corrupt or truncated file?): ${(e as Error).message}`);
  }
  const { width, height } = bitmap;
  bitmap.close();
  return { width, height, type };
}
