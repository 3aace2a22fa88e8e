// Streaming safetensors reader and a writer.
//
// Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N
// bytes of JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`,
// then the data section, offsets relative to its start. The header is validated before any
// tensor is read (dtype, shape x dtype size == offset span, offsets inside the file, no gaps or
// overlaps: the same rules as the reference implementation), then tensors are produced one at
// a time in file order as float32. Reading never holds more than the current tensor (its raw
// bytes and its float32 copy) plus one stream chunk, so a 1 GB checkpoint needs ~1 tensor of
// extra CPU memory, not 2 GB; `stats.maxBufferedBytes` reports the peak so tests can assert it.
//
// Sources: a ReadableStream (a fetch body: strictly sequential) or a Blob (a user-picked File,
// a cached Response's blob: read by slices).
// Typed-array views assume a little-endian host, which every WebGPU platform is.
import type { HostTensor } from './gpu_weights';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** In file order (ascending offsets). */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file: 8 + header length. */
  dataStart: number;
  /** Total file size the header implies. */
  fileSize: number;
}

export interface SafetensorsReadStats {
  /** Peak bytes this reader held at once: current tensor buffers plus unread chunk bytes. */
  maxBufferedBytes: number;
  bytesRead: number;
  tensorsRead: number;
}

export interface DecodedTensor extends HostTensor {
  dtype: SafetensorsDtype;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors.ts: this platform is big-endian; safetensors data is little-endian');
}

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 conversion

let f16Table: Float32Array | null = null;

/** All 65536 float16 values as float32 (256 KB, built once): decoding becomes a lookup. */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // zero / subnormal
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  f16Table = t;
  return t;
}

export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff];
}

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

/** float32 -> float16 bits, round to nearest even, overflow to infinity. */
export function f32ToF16Bits(x: number): number {
  cvtF32[0] = x;
  const b = cvtU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mant |= 0x800000; // implicit 1
    const shift = 14 - e; // 24-bit mantissa -> subnormal 10-bit field
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // a carry into bit 10 is exactly the smallest normal
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  let ee = e;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      ee++;
      if (ee >= 31) return sign | 0x7c00;
    }
  }
  return sign | (ee << 10) | m;
}

export function bf16BitsToF32(h: number): number {
  cvtU32[0] = (h & 0xffff) << 16;
  return cvtF32[0];
}

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  cvtF32[0] = x;
  const b = cvtU32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// header

/** Parse and validate the header; `head` holds at least the 8 + N header bytes. */
export function parseSafetensorsHeader(head: Uint8Array, file: string, fileSize?: number | null): SafetensorsHeader {
  const n = headerLength(head, file, fileSize);
  if (head.byteLength < 8 + n) throw new Error(`${file}: truncated inside the header (${head.byteLength} of ${8 + n} bytes)`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${file}: the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${file}: the safetensors header is not a JSON object`);
  }
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    tensors.push(parseEntry(name, entry, file));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of tensors) {
    if (t.begin !== cursor) {
      const why = t.begin < cursor ? 'overlaps the tensor before it' : `leaves a gap of ${t.begin - cursor} bytes before it`;
      throw new Error(`${file}: tensor ${t.name} at data_offsets [${t.begin}, ${t.end}] ${why}`);
    }
    cursor = t.end;
  }
  const dataStart = 8 + n;
  const implied = dataStart + cursor;
  if (fileSize != null && fileSize !== implied) {
    const why =
      fileSize < implied
        ? `is truncated: ${fileSize} bytes, but its header describes ${implied}`
        : `has ${fileSize - implied} bytes after its last tensor (header describes ${implied} of ${fileSize})`;
    throw new Error(`${file} ${why}`);
  }
  return { tensors, metadata, dataStart, fileSize: implied };
}

function headerLength(head: Uint8Array, file: string, fileSize?: number | null): number {
  if (head.byteLength < 8) throw new Error(`${file}: too short to be a safetensors file (${head.byteLength} bytes)`);
  const view = new DataView(head.buffer, head.byteOffset, 8);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (n === 0 || n > MAX_HEADER_BYTES) throw new Error(`${file}: implausible safetensors header length ${n}: not a safetensors file?`);
  if (fileSize != null && 8 + n > fileSize) {
    throw new Error(`${file}: header length ${n} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`);
  }
  return n;
}

function parseEntry(name: string, entry: unknown, file: string): TensorInfo {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const where = `${file}: tensor ${name}`;
  if (typeof e !== 'object' || e === null) throw new Error(`${where}: header entry is not an object`);
  if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
    throw new Error(`${where}: dtype ${JSON.stringify(e.dtype)} is not supported (F32, F16, BF16 are)`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0]) {
    throw new Error(`${where}: data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const span = off[1] - off[0];
  if (count * DTYPE_BYTES[dtype] !== span) {
    throw new Error(
      `${where}: shape ${JSON.stringify(shape)} x ${dtype} needs ${count * DTYPE_BYTES[dtype]} bytes but data_offsets span ${span}`,
    );
  }
  return { name, dtype, shape: shape as number[], begin: off[0], end: off[1] };
}

// ---------------------------------------------------------------------------------------------
// decoding

/** Raw little-endian tensor bytes -> float32. F32 bytes are adopted, not copied. */
function decode(info: TensorInfo, raw: Uint8Array): Float32Array {
  const n = (info.end - info.begin) / DTYPE_BYTES[info.dtype];
  if (info.dtype === 'F32') {
    // `raw` always starts at offset 0 of its own buffer here, so the view is aligned.
    return new Float32Array(raw.buffer, raw.byteOffset, n);
  }
  const src = new Uint16Array(raw.buffer, raw.byteOffset, n);
  const out = new Float32Array(n);
  if (info.dtype === 'F16') {
    const table = f16ToF32Table();
    for (let i = 0; i < n; i++) out[i] = table[src[i]];
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  }
  return out;
}

/** Sequential byte reader over a stream that keeps at most one chunk. */
class ChunkReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private pos = 0;
  offset = 0; // bytes consumed from the start of the stream

  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly file: string,
  ) {}

  get pendingBytes(): number {
    return this.chunk.byteLength - this.pos;
  }

  /** Fill `dst` completely; `what` names what was being read when the stream ends early. */
  async readInto(dst: Uint8Array, what: string, onChunk?: () => void): Promise<void> {
    let filled = 0;
    while (filled < dst.byteLength) {
      if (this.pos >= this.chunk.byteLength) {
        const { done, value } = await this.reader.read();
        if (done) {
          throw new Error(
            `${this.file} is truncated: the stream ended at byte ${this.offset} while reading ${what} ` +
              `(${dst.byteLength - filled} more bytes expected)`,
          );
        }
        this.chunk = value;
        this.pos = 0;
        onChunk?.();
        continue;
      }
      const n = Math.min(dst.byteLength - filled, this.chunk.byteLength - this.pos);
      dst.set(this.chunk.subarray(this.pos, this.pos + n), filled);
      this.pos += n;
      filled += n;
      this.offset += n;
    }
  }

  /** True if the stream holds more bytes. */
  async hasMore(): Promise<boolean> {
    if (this.pos < this.chunk.byteLength) return true;
    for (;;) {
      const { done, value } = await this.reader.read();
      if (done) return false;
      if (value.byteLength > 0) {
        this.chunk = value;
        this.pos = 0;
        return true;
      }
    }
  }

  cancel(): void {
    void this.reader.cancel().catch(() => undefined);
  }
}

export interface OpenOptions {
  /** The file's name (for errors), e.g. 'model.safetensors' or a URL. */
  file: string;
  /** File size when known (Content-Length, File.size): checked against the header up front. */
  size?: number | null;
  /** Bytes consumed so far, called as reading progresses. */
  onBytes?: (loaded: number) => void;
}

/** An open safetensors file: header first, then its tensors one at a time. */
export class SafetensorsFile {
  readonly stats: SafetensorsReadStats = { maxBufferedBytes: 0, bytesRead: 0, tensorsRead: 0 };
  private consumed = false;

  private constructor(
    readonly file: string,
    readonly header: SafetensorsHeader,
    private readonly source: { kind: 'stream'; reader: ChunkReader } | { kind: 'blob'; blob: Blob },
    private readonly onBytes?: (loaded: number) => void,
  ) {}

  static async open(source: ReadableStream<Uint8Array> | Blob, opts: OpenOptions): Promise<SafetensorsFile> {
    if (source instanceof Blob) {
      const size = source.size;
      const len = new Uint8Array(await source.slice(0, 8).arrayBuffer());
      const n = headerLength(len, opts.file, size);
      const head = new Uint8Array(await source.slice(0, 8 + n).arrayBuffer());
      const header = parseSafetensorsHeader(head, opts.file, size);
      const f = new SafetensorsFile(opts.file, header, { kind: 'blob', blob: source }, opts.onBytes);
      f.note(head.byteLength, 0);
      f.stats.bytesRead = header.dataStart;
      return f;
    }
    const reader = new ChunkReader(source.getReader(), opts.file);
    try {
      const len = new Uint8Array(8);
      await reader.readInto(len, 'the header length');
      const n = headerLength(len, opts.file, opts.size);
      const head = new Uint8Array(8 + n);
      head.set(len);
      await reader.readInto(head.subarray(8), 'the header');
      const header = parseSafetensorsHeader(head, opts.file, opts.size);
      const f = new SafetensorsFile(opts.file, header, { kind: 'stream', reader }, opts.onBytes);
      f.note(head.byteLength, reader.pendingBytes);
      f.stats.bytesRead = reader.offset;
      return f;
    } catch (e) {
      reader.cancel();
      throw e;
    }
  }

  /**
   * The tensors in file order, as float32. Each yielded array is fresh and owned by the
   * caller; the reader keeps no reference to it once the next one is requested.
   */
  async *tensors(): AsyncGenerator<DecodedTensor> {
    if (this.consumed) throw new Error(`${this.file}: tensors() can only be read once`);
    this.consumed = true;
    const src = this.source;
    try {
      for (const info of this.header.tensors) {
        const bytes = info.end - info.begin;
        let raw: Uint8Array;
        if (src.kind === 'blob') {
          const start = this.header.dataStart + info.begin;
          raw = new Uint8Array(await src.blob.slice(start, start + bytes).arrayBuffer());
          if (raw.byteLength !== bytes) throw new Error(`${this.file} is truncated inside tensor ${info.name}`);
          this.stats.bytesRead = start + bytes;
        } else {
          raw = new Uint8Array(bytes);
          await src.reader.readInto(raw, `tensor ${info.name}`, () => this.note(bytes, src.reader.pendingBytes));
          this.stats.bytesRead = src.reader.offset;
        }
        const data = decode(info, raw);
        // F32 adopts `raw`'s buffer; F16/BF16 hold raw bytes and the float32 copy at once.
        this.note(info.dtype === 'F32' ? bytes : bytes + data.byteLength, src.kind === 'stream' ? src.reader.pendingBytes : 0);
        this.onBytes?.(this.stats.bytesRead);
        this.stats.tensorsRead++;
        yield { name: info.name, dtype: info.dtype, shape: [...info.shape], data };
      }
      if (src.kind === 'stream' && (await src.reader.hasMore())) {
        throw new Error(`${this.file} has bytes after its last tensor (header describes ${this.header.fileSize} bytes)`);
      }
    } finally {
      if (src.kind === 'stream') src.reader.cancel();
    }
  }

  /** Close without reading (e.g. validation failed on the header). */
  close(): void {
    if (this.source.kind === 'stream') this.source.reader.cancel();
  }

  private note(tensorBytes: number, chunkBytes: number): void {
    this.stats.maxBufferedBytes = Math.max(this.stats.maxBufferedBytes, tensorBytes + chunkBytes);
  }
}

// ---------------------------------------------------------------------------------------------
// sharded checkpoints

export interface SafetensorsIndex {
  /** Shard file names in the order they first appear in weight_map. */
  shards: string[];
  /** Tensor name -> shard file name. */
  weightMap: Map<string, string>;
}

/** Parse model.safetensors.index.json. */
export function parseSafetensorsIndex(json: unknown, file = 'model.safetensors.index.json'): SafetensorsIndex {
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new Error(`${file}: weight_map is missing or not an object`);
  }
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors') || shard.includes('..')) {
      throw new Error(`${file}: weight_map["${name}"] is ${JSON.stringify(shard)}, not a .safetensors file name`);
    }
    weightMap.set(name, shard);
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (weightMap.size === 0) throw new Error(`${file}: weight_map is empty`);
  return { shards, weightMap };
}

// ---------------------------------------------------------------------------------------------
// writer

export interface WritableTensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Serialise tensors (in the order given) to a safetensors file, converting float32 to `dtype`.
 * The header is padded with spaces to a multiple of 8 bytes so every tensor starts aligned.
 */
export function writeSafetensors(
  tensors: readonly WritableTensor[],
  dtype: SafetensorsDtype = 'F32',
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const size = DTYPE_BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`writeSafetensors: ${t.name} has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    if (t.name in header) throw new Error(`writeSafetensors: tensor ${t.name} given twice`);
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + n * size] };
    offset += n * size;
  }
  let json: Uint8Array = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  let pos = 8 + padded;
  for (const t of tensors) {
    if (dtype === 'F32') {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      const dst = new Uint16Array(out.buffer, pos, t.data.length);
      const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < t.data.length; i++) dst[i] = conv(t.data[i]);
    }
    pos += t.data.length * size;
  }
  return out;
}
