// Safetensors: writer/reader round trips in F32/F16/BF16 through streams (odd chunk sizes) and
// Blobs, header validation errors that name the file and tensor, truncation, sharded indexes,
// and the bound on bytes held while streaming.
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  parseSafetensorsIndex,
  SafetensorsFile,
  writeSafetensors,
  type DecodedTensor,
  type WritableTensor,
} from '../../src/engine/load/safetensors';
import { mulberry32, randn } from '../../src/lib/util/rng';
import { expectClose } from '../util/compare';

function streamOf(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (pos >= bytes.byteLength) return ctrl.close();
      ctrl.enqueue(bytes.slice(pos, pos + chunk));
      pos += chunk;
    },
  });
}

function sampleTensors(seed = 1): WritableTensor[] {
  const rng = mulberry32(seed);
  const t = (name: string, shape: number[]) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => randn(rng)),
  });
  return [t('b.weight', [7, 3]), t('a.bias', [5]), t('c.conv', [2, 3, 2, 2]), t('d.scalarish', [1]), t('e.empty', [0, 4])];
}

async function readAll(f: SafetensorsFile): Promise<DecodedTensor[]> {
  const out: DecodedTensor[] = [];
  for await (const t of f.tensors()) out.push(t);
  return out;
}

/** Build a file from a raw header object and data bytes (for corrupt-file tests). */
function rawFile(header: unknown, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

describe('float16 / bfloat16 conversion', () => {
  it('round-trips every float16 bit pattern exactly (NaNs stay NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const f = f16BitsToF32(h);
      if (Number.isNaN(f)) expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(f)))).toBe(true);
      else expect(f32ToF16Bits(f), `bits ${h.toString(16)}`).toBe(h);
    }
  });

  it('rounds to nearest even and saturates to infinity', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(f32ToF16Bits(2 ** -26)).toBe(0);
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(3.140625))).toBe(3.140625);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
  });
});

describe('writeSafetensors + SafetensorsFile', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    for (const via of ['stream', 'blob'] as const) {
      it(`round-trips ${dtype} via a ${via}`, async () => {
        const ts = sampleTensors();
        const bytes = writeSafetensors(ts, dtype, { format: 'pt' });
        expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0); // padded header
        const src = via === 'stream' ? streamOf(bytes, 37) : new Blob([bytes]);
        const f = await SafetensorsFile.open(src, { file: 'x.safetensors', size: bytes.byteLength });
        expect(f.header.metadata).toEqual({ format: 'pt' });
        expect(f.header.tensors.map((t) => t.name)).toEqual(ts.map((t) => t.name)); // file order
        const got = await readAll(f);
        expect(got.map((t) => t.name)).toEqual(ts.map((t) => t.name));
        const tol = dtype === 'F32' ? 0 : dtype === 'F16' ? 2 ** -10 : 2 ** -7;
        for (let i = 0; i < ts.length; i++) {
          expect(got[i].shape).toEqual(ts[i].shape);
          expect(got[i].dtype).toBe(dtype);
          expect(got[i].data).toBeInstanceOf(Float32Array);
          expectClose(got[i].data, ts[i].data, 1e-7, tol, `${dtype} ${ts[i].name}`);
        }
        expect(f.stats.tensorsRead).toBe(ts.length);
        expect(f.stats.bytesRead).toBe(bytes.byteLength);
      });
    }
  }

  it('gives byte-identical output for identical input', () => {
    expect(writeSafetensors(sampleTensors(3), 'BF16')).toEqual(writeSafetensors(sampleTensors(3), 'BF16'));
  });

  it('holds at most about one tensor plus one chunk while streaming', async () => {
    // 40 tensors of 64 KB each (2.5 MB): the reader may hold one tensor (x1.5 for F16) + a chunk.
    const ts = Array.from({ length: 40 }, (_, i) => ({ name: `t${String(i).padStart(2, '0')}`, shape: [128, 128], data: new Float32Array(128 * 128).fill(i) }));
    for (const dtype of ['F32', 'F16'] as const) {
      const bytes = writeSafetensors(ts, dtype);
      const chunk = 16 * 1024;
      let loaded = 0;
      const f = await SafetensorsFile.open(streamOf(bytes, chunk), { file: 'big.safetensors', onBytes: (n) => (loaded = n) });
      let n = 0;
      for await (const t of f.tensors()) {
        expect(t.data[5]).toBe(n++);
      }
      expect(loaded).toBe(bytes.byteLength);
      const tensorBytes = 128 * 128 * (dtype === 'F32' ? 4 : 2 + 4);
      expect(f.stats.maxBufferedBytes).toBeGreaterThanOrEqual(tensorBytes);
      expect(f.stats.maxBufferedBytes).toBeLessThanOrEqual(tensorBytes + chunk);
      expect(f.stats.maxBufferedBytes).toBeLessThan(bytes.byteLength / 10);
    }
  });

  const data = new Uint8Array(24);
  const bad: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
    ['an unsupported dtype', rawFile({ w: { dtype: 'I64', shape: [3], data_offsets: [0, 24] } }, data), /bad\.safetensors: tensor w: dtype "I64" is not supported/],
    ['a shape not matching its offsets', rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 24] } }, data), /tensor w: shape \[2,2\] x F32 needs 16 bytes but data_offsets span 24/],
    ['overlapping tensors', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data), /tensor b at data_offsets \[8, 24\] overlaps/],
    ['a gap between tensors', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, data), /tensor b .* leaves a gap of 8 bytes/],
    ['offsets past the end of the file', rawFile({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data), /bad\.safetensors is truncated: \d+ bytes, but its header describes/],
    ['bytes after the last tensor', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), /has 16 bytes after its last tensor/],
    ['a header that is not JSON', (() => { const b = rawFile({ a: 1 }, data); b[8] = 0x7b; b[9] = 0x7b; return b; })(), /header is not valid JSON/],
    ['a bad header length', (() => { const b = new Uint8Array(64); new DataView(b.buffer).setUint32(0, 1000, true); return b; })(), /header length 1000 runs past the end of the file/],
    ['a tiny file', new Uint8Array(5), /bad\.safetensors(: too short to be a safetensors file| is truncated: the stream ended at byte 5 while reading the header length)/],
    ['negative offsets', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, data), /data_offsets \[-8,0\] is not \[begin, end\]/],
  ];
  for (const [what, bytes, msg] of bad) {
    it(`rejects ${what}, naming file and tensor (blob and stream)`, async () => {
      await expect(SafetensorsFile.open(new Blob([bytes]), { file: 'bad.safetensors' })).rejects.toThrow(msg);
      await expect(SafetensorsFile.open(streamOf(bytes, 7), { file: 'bad.safetensors', size: bytes.byteLength })).rejects.toThrow(msg);
    });
  }

  it('reports a truncated stream when its size is unknown, naming the tensor', async () => {
    const bytes = writeSafetensors(sampleTensors(), 'F32');
    const cut = bytes.slice(0, bytes.byteLength - 10);
    const f = await SafetensorsFile.open(streamOf(cut, 64), { file: 'cut.safetensors' });
    await expect(readAll(f)).rejects.toThrow(/cut\.safetensors is truncated: the stream ended at byte \d+ while reading tensor c\.conv/);
    const extra = new Uint8Array(bytes.byteLength + 3);
    extra.set(bytes);
    const g = await SafetensorsFile.open(streamOf(extra, 64), { file: 'long.safetensors' });
    await expect(readAll(g)).rejects.toThrow(/long\.safetensors has bytes after its last tensor/);
  });
});

describe('parseSafetensorsIndex', () => {
  it('lists shards in order of first use and maps every tensor', () => {
    const idx = parseSafetensorsIndex({
      metadata: { total_size: 100 },
      weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' },
    });
    expect(idx.shards).toEqual(['model-00002-of-00002.safetensors', 'model-00001-of-00002.safetensors']);
    expect(idx.weightMap.get('c')).toBe('model-00002-of-00002.safetensors');
  });

  it('rejects a missing weight_map or a bad shard name', () => {
    expect(() => parseSafetensorsIndex({}, 'i.json')).toThrow(/i\.json: weight_map is missing/);
    expect(() => parseSafetensorsIndex({ weight_map: { a: '../x.safetensors' } })).toThrow(/weight_map\["a"\]/);
    expect(() => parseSafetensorsIndex({ weight_map: { a: 3 } })).toThrow(/not a \.safetensors file name/);
  });
});
