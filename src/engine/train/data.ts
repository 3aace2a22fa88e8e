// Dataset samples -> training inputs, through THE one input path (buildModelInputs, mode
// 'train'), so training sees exactly the token ids, pixels and assistant-only labels that
// evaluation and generation see.
//
// Images come through a `getImage(hash)` function rather than a database handle, so the worker
// can read them with its own IndexedDB connection and node tests with a Map.
//
// Prepared inputs are cached in memory, keyed by sample id + updatedAt (an edit bumps
// updatedAt, so an edited sample is prepared again) and bounded in bytes: pixels dominate
// (a 13-tile SmolVLM sample is ~40 MB of float32), so the cache is LRU and holds what fits.
// An IndexedDB cache is left out on purpose: at that size per sample it would fill the site's
// quota quickly, and decoding + preprocessing again costs less than a training step.
//
// Truncation to RunConfig.maxTokens keeps the first maxTokens tokens. Image tokens are never
// cut (the vision features must line up with them): a sample whose image tokens reach past
// maxTokens is skipped, as is one whose answer starts past it (nothing left to learn).
// Both are reported once per sample version as notices.
// T tokens, N tiles.
import type { ModelInputs } from '../inputs';
import { buildModelInputs, IGNORE_INDEX } from '../processor/build_inputs';
import { decodeImage } from '../processor/image_decode';
import type { RgbaImage } from '../processor/image_processor';
import type { Processor } from '../processor/processor';
import type { Sample } from '../../lib/dataset/schema';
import type { NoticeEvent } from './train_types';

export type GetImage = (hash: string) => Promise<Blob | undefined>;
export type DecodeImage = (blob: Blob, name: string) => Promise<RgbaImage>;

/** Prepared inputs by key; implementations decide what they keep. */
export interface InputsCache {
  get(key: string): ModelInputs | undefined;
  set(key: string, inputs: ModelInputs): void;
}

export function inputsBytes(x: ModelInputs): number {
  return x.inputIds.byteLength + x.pixelValues.byteLength + (x.labels?.byteLength ?? 0);
}

/** Least-recently-used cache bounded by bytes; an entry larger than the budget is not kept. */
export class MemoryInputsCache implements InputsCache {
  private readonly map = new Map<string, ModelInputs>(); // insertion order = recency
  private bytes = 0;

  constructor(readonly maxBytes = 256 * 1024 * 1024) {}

  get(key: string): ModelInputs | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: ModelInputs): void {
    const size = inputsBytes(v);
    const old = this.map.get(key);
    if (old) {
      this.bytes -= inputsBytes(old);
      this.map.delete(key);
    }
    if (size > this.maxBytes) return;
    this.map.set(key, v);
    this.bytes += size;
    for (const [k, x] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= inputsBytes(x);
    }
  }

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }
}

export type TruncateResult =
  | { kind: 'ok'; inputs: ModelInputs; cutFrom?: number }
  | { kind: 'skip'; reason: string };

/**
 * Keep the first `maxTokens` tokens of training inputs, never cutting an image's tokens.
 * `imageEnd` is one past the last token of the last image expansion.
 */
export function truncateInputs(x: ModelInputs, maxTokens: number, proc: Pick<Processor, 'special'>): TruncateResult {
  const T = x.inputIds.length;
  const imageEnd = imageTokensEnd(x.inputIds, proc);
  if (imageEnd > maxTokens) {
    return {
      kind: 'skip',
      reason: `its image tokens alone run to token ${imageEnd}, past maxTokens = ${maxTokens} (fewer or smaller images, no image splitting, or a larger maxTokens would fit it)`,
    };
  }
  const labels = x.labels;
  if (!labels) throw new Error('truncateInputs: training inputs without labels');
  if (T <= maxTokens) return { kind: 'ok', inputs: x };
  const cutLabels = labels.subarray(0, maxTokens);
  if (!cutLabels.some((l) => l !== IGNORE_INDEX)) {
    return { kind: 'skip', reason: `its answer starts after token ${maxTokens} (maxTokens), so nothing of it would be learned` };
  }
  return {
    kind: 'ok',
    cutFrom: T,
    inputs: { ...x, inputIds: x.inputIds.slice(0, maxTokens), labels: labels.slice(0, maxTokens) },
  };
}

/** One past the last image-expansion token: the last `<image>` id and a closing `<fake_token_around_image>`. */
function imageTokensEnd(ids: Int32Array, proc: Pick<Processor, 'special'>): number {
  const { image, fakeTokenAroundImage } = proc.special;
  let last = -1;
  for (let t = ids.length - 1; t >= 0; t--) {
    if (ids[t] === image) {
      last = t;
      break;
    }
  }
  if (last < 0) return 0;
  return last + 1 < ids.length && ids[last + 1] === fakeTokenAroundImage ? last + 2 : last + 1;
}

export interface TrainingDataOptions {
  getImage: GetImage;
  maxTokens: number;
  /** Blob -> pixels; the browser decoder by default (tests may pass their own). */
  decode?: DecodeImage;
  /** Names the processor in cache keys (e.g. the model id), so two models never share entries. */
  cacheScope?: string;
  cache?: InputsCache;
  doImageSplitting?: boolean;
  onNotice?: (n: NoticeEvent) => void;
}

/** Turns samples into ModelInputs for training and validation, with caching and truncation notices. */
export class TrainingData {
  readonly cache: InputsCache;
  private readonly decode: DecodeImage;
  /** Sample versions already reported, so a skipped sample is reported once, not every epoch. */
  private readonly reported = new Set<string>();

  constructor(
    readonly proc: Processor,
    private readonly opts: TrainingDataOptions,
  ) {
    if (!(opts.maxTokens > 0)) throw new Error(`TrainingData: maxTokens must be positive, got ${opts.maxTokens}`);
    this.cache = opts.cache ?? new MemoryInputsCache();
    this.decode = opts.decode ?? decodeImage;
  }

  private key(s: Pick<Sample, 'id' | 'updatedAt'>): string {
    return `${this.opts.cacheScope ?? ''}|${this.opts.doImageSplitting ?? 'default'}|${s.id}|${s.updatedAt}`;
  }

  private notice(s: Sample, level: NoticeEvent['level'], message: string): void {
    const k = this.key(s);
    if (this.reported.has(k + level + message)) return;
    this.reported.add(k + level + message);
    this.opts.onNotice?.({ kind: 'notice', level, message: `Sample ${s.id} (${s.source}): ${message}` });
  }

  /** Full (untruncated) inputs of a sample, from the cache or built; throws naming what is wrong. */
  async build(s: Sample): Promise<ModelInputs> {
    const key = this.key(s);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const images: RgbaImage[] = [];
    for (const [k, ref] of s.images.entries()) {
      const blob = await this.opts.getImage(ref.hash);
      if (!blob) throw new Error(`image ${k + 1} (${ref.name}, ${ref.hash.slice(0, 12)}…) is not stored`);
      images.push(await this.decode(blob, ref.name));
    }
    const inputs = buildModelInputs(this.proc, s.turns, images, { mode: 'train', doImageSplitting: this.opts.doImageSplitting });
    this.cache.set(key, inputs);
    return inputs;
  }

  /**
   * Training inputs of one sample, truncated to maxTokens; null when the sample cannot train
   * (a notice says why: unreadable, missing image, image tokens past maxTokens, ...).
   */
  async prepare(s: Sample): Promise<ModelInputs | null> {
    let full: ModelInputs;
    try {
      full = await this.build(s);
    } catch (e) {
      this.notice(s, 'warning', `skipped: ${(e as Error).message}`);
      return null;
    }
    const r = truncateInputs(full, this.opts.maxTokens, this.proc);
    if (r.kind === 'skip') {
      this.notice(s, 'warning', `skipped: ${r.reason}`);
      return null;
    }
    if (r.cutFrom !== undefined) {
      this.notice(s, 'info', `truncated from ${r.cutFrom} to ${this.opts.maxTokens} tokens (maxTokens); the end of its answer is not learned`);
    }
    return r.inputs;
  }

  /** The trainable inputs of several samples, in order, skipped ones left out. */
  async prepareMany(samples: readonly Sample[]): Promise<ModelInputs[]> {
    const out: ModelInputs[] = [];
    for (const s of samples) {
      const x = await this.prepare(s);
      if (x) out.push(x);
    }
    return out;
  }
}
