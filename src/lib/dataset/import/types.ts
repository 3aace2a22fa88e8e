// Types shared by the importers. Kept apart from the parsers so that UI code can import them
// without pulling in fflate or the parsing code.

import type { Split } from '../schema';
import type { NewSample } from '../db';

/** One input file. `path` is relative: a folder picker's webkitRelativePath, a zip entry name, or a plain name. */
export interface ImportFile {
  path: string;
  blob: Blob;
}

/** Something that was skipped or needs attention. `line` is 1-based (JSONL and CSV). */
export interface ImportIssue {
  file: string;
  line?: number;
  reason: string;
}

export interface ImageLimits {
  /** Largest accepted file, bytes. */
  maxBytes: number;
  /** Largest accepted width or height, pixels. */
  maxSide: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxBytes: 20 * 1024 * 1024, maxSide: 8192 };

export interface DecodedImage {
  width: number;
  height: number;
  /** MIME type, e.g. image/png. */
  type: string;
}

export interface ImportOptions {
  projectId: string;
  /** Reads an image's size and type; throws when the bytes are not a decodable image. Injected so node tests can fake it. */
  decodeImage: (blob: Blob, name: string) => Promise<DecodedImage>;
  /** Hashes of images already stored: an image-only file with one of these is a duplicate. */
  existingHashes?: Set<string>;
  /**
   * Samples already in the project: an imported sample with the same images and the same turns
   * as one of these is a duplicate, and their ids are not reused.
   */
  existingSamples?: readonly { id: string; images: readonly { hash: string }[]; turns: readonly { role: string; text: string }[] }[];
  limits?: Partial<ImageLimits>;
  /** Split of records that do not carry one (default 'train'). */
  defaultSplit?: Split;
  now?: () => number;
  newId?: () => string;
}

export interface ImportResult {
  items: NewSample[];
  issues: ImportIssue[];
  /** samples: imported; images: distinct new image blobs (not in existingHashes); skipped: records/files not imported. */
  counts: { samples: number; images: number; skipped: number };
}
