// A record read from a data file, before its images are found and checked.

import type { Turn } from '../schema';

export interface Draft {
  turns: Turn[];
  /** Image paths as written in the file, in placeholder order. */
  imagePaths: string[];
  /** Our own extra fields when the file carries them (raw; validated when the sample is built). */
  meta: { split?: unknown; kind?: unknown; stage?: unknown; tags?: unknown; id?: unknown };
  file: string;
  line?: number;
  /** "line 3" or "record 4": where in the file, for messages. */
  where: string;
  source: string;
}
