// Key/value cache for the text decoder: lets a decode step process only its new token(s)
// against every earlier key, with positions continuing where the prompt stopped.
//
// Design: per layer, K and V are GPU tensors (B, S, NKV*HS) that GROW by concatenation on each
// step; the previous pair is disposed once the longer one exists. tfjs has no in-place write
// into a preallocated (B, S_max, ...) buffer without a custom kernel, and the copy a concat
// costs is O(S) per step, the same order as the attention that reads all S keys anyway, so a
// preallocated ring would save little at SmolVLM's context lengths. The attention op sees
// exactly S = cached + new keys, which makes its causal rule (query t at absolute position
// S - T + t) line up with the cache for free.
//
// Padding: the cache keeps the (B, S) key mask on the CPU (1 = real token, 0 = padding) and
// the next RoPE position of each row, so a left-padded batch decodes with correct positions.
// The mask is uploaded per step only when some key is padding.
//
// B batch, S cached keys, T new tokens, NKV kv heads, HS head size.
import * as tf from '@tensorflow/tfjs';

interface LayerKv {
  k: tf.Tensor3D; // (B, S, NKV*HS), RoPE already applied
  v: tf.Tensor3D; // (B, S, NKV*HS)
}

export class KvCache {
  readonly batch: number; // B
  readonly nLayers: number;
  private readonly layers: (LayerKv | null)[];
  /** (B*S) 1/0 per cached key, row-major by batch row. */
  private mask: Uint8Array = new Uint8Array(0);
  /** Keys cached per row (S, the same for every row: padding counts). */
  private len = 0;
  /** (B) RoPE position the next real token of each row gets. */
  private readonly next: Int32Array;
  private disposed = false;

  constructor(nLayers: number, batch = 1) {
    this.nLayers = nLayers;
    this.batch = batch;
    this.layers = new Array<LayerKv | null>(nLayers).fill(null);
    this.next = new Int32Array(batch);
  }

  /** S: keys cached per row, padding included. */
  get length(): number {
    return this.len;
  }

  /** (B) the position the next real token of each row will get. */
  nextPositions(): Int32Array {
    return this.next.slice();
  }

  /**
   * Book T new tokens per row before the layers run: returns their (B*T) RoPE positions and
   * the full (B*(S+T)) key mask. Padding tokens get position 0 (they are never attended to).
   * `newMask` (B*T) is 1 for real tokens; omitted = all real.
   */
  reserve(T: number, newMask?: Int32Array | Uint8Array): { positions: Int32Array; keyMask: Uint8Array; allReal: boolean } {
    this.assertLive();
    const B = this.batch;
    const S = this.len;
    if (newMask && newMask.length !== B * T) throw new Error(`KvCache.reserve: mask has ${newMask.length} entries, expected B*T = ${B}*${T}`);
    const positions = new Int32Array(B * T); // (B, T)
    const keyMask = new Uint8Array(B * (S + T)); // (B, S+T)
    let allReal = true;
    for (let b = 0; b < B; b++) {
      keyMask.set(this.mask.subarray(b * S, (b + 1) * S), b * (S + T));
      for (let t = 0; t < T; t++) {
        const real = newMask ? newMask[b * T + t] !== 0 : true;
        keyMask[b * (S + T) + S + t] = real ? 1 : 0;
        positions[b * T + t] = real ? this.next[b]++ : 0;
      }
    }
    for (let i = 0; i < keyMask.length && allReal; i++) allReal = keyMask[i] === 1;
    this.mask = keyMask;
    this.len = S + T;
    return { positions, keyMask, allReal };
  }

  /**
   * Append one layer's new keys/values (B, T, NKV*HS) and return the full (B, S+T, NKV*HS)
   * pair. The returned tensors are owned by the cache (kept out of any tf.tidy): do not
   * dispose them; the cache disposes the previous pair here and the last one in dispose().
   */
  append(layer: number, k: tf.Tensor3D, v: tf.Tensor3D): LayerKv {
    this.assertLive();
    const prev = this.layers[layer];
    const S = (prev ? prev.k.shape[1] : 0) + k.shape[1];
    if (S !== this.len) {
      throw new Error(`KvCache.append: layer ${layer} would hold ${S} keys after the append, but ${this.len} were reserved`);
    }
    const next: LayerKv = prev
      ? { k: tf.keep(tf.concat([prev.k, k], 1)), v: tf.keep(tf.concat([prev.v, v], 1)) } // (B, S+T, NKV*HS)
      : { k: tf.keep(k.clone()), v: tf.keep(v.clone()) };
    if (prev) {
      prev.k.dispose();
      prev.v.dispose();
    }
    this.layers[layer] = next;
    return next;
  }

  /** GPU bytes the cached keys and values hold. */
  bytes(): number {
    let n = 0;
    for (const l of this.layers) if (l) n += (l.k.size + l.v.size) * 4;
    return n;
  }

  dispose(): void {
    for (const l of this.layers) {
      l?.k.dispose();
      l?.v.dispose();
    }
    this.layers.fill(null);
    this.disposed = true;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('KvCache: used after dispose()');
  }
}
