// KV cache bookkeeping (positions, key mask) and growth, on tfjs's CPU backend in node.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/engine/model/kv_cache';

describe('KvCache', () => {
  it('continues RoPE positions across steps and grows the key mask', () => {
    const cache = new KvCache(2, 1);
    const a = cache.reserve(4);
    expect(Array.from(a.positions)).toEqual([0, 1, 2, 3]);
    expect(a.allReal).toBe(true);
    expect(cache.length).toBe(4);
    const b = cache.reserve(1);
    expect(Array.from(b.positions)).toEqual([4]);
    expect(Array.from(b.keyMask)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(cache.nextPositions())).toEqual([5]);
    cache.dispose();
  });

  it('counts positions per row under left padding and masks the pad keys', () => {
    const cache = new KvCache(1, 2);
    // row 0: two pads then 2 tokens; row 1: 4 tokens
    const a = cache.reserve(4, Int32Array.of(0, 0, 1, 1, 1, 1, 1, 1));
    expect(Array.from(a.positions)).toEqual([0, 0, 0, 1, 0, 1, 2, 3]);
    expect(a.allReal).toBe(false);
    const b = cache.reserve(1);
    expect(Array.from(b.positions)).toEqual([2, 4]);
    // (B, S=5): row 0 keeps its two masked pads
    expect(Array.from(b.keyMask)).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(b.allReal).toBe(false);
    cache.dispose();
  });

  it('appends K/V along the sequence, frees the previous pair, refuses a length mismatch', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const cache = new KvCache(1, 1);
    cache.reserve(2);
    const k0 = tf.tensor3d([1, 2, 3, 4], [1, 2, 2]);
    const v0 = tf.tensor3d([5, 6, 7, 8], [1, 2, 2]);
    tf.tidy(() => {
      cache.append(0, k0, v0);
    }); // kept tensors survive the tidy
    k0.dispose();
    v0.dispose();
    cache.reserve(1);
    const got = tf.tidy(() => {
      const { k, v } = cache.append(0, tf.tensor3d([9, 10], [1, 1, 2]), tf.tensor3d([11, 12], [1, 1, 2]));
      return [k.clone(), v.clone()];
    });
    expect(got[0].shape).toEqual([1, 3, 2]);
    expect(Array.from(await got[0].data())).toEqual([1, 2, 3, 4, 9, 10]);
    expect(Array.from(await got[1].data())).toEqual([5, 6, 7, 8, 11, 12]);
    tf.dispose(got);
    expect(cache.bytes()).toBe(2 * 6 * 4);
    // two tokens appended after reserving one
    cache.reserve(1);
    expect(() =>
      tf.tidy(() => {
        cache.append(0, tf.zeros([1, 2, 2]) as tf.Tensor3D, tf.zeros([1, 2, 2]) as tf.Tensor3D);
      }),
    ).toThrow(/reserved/);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => cache.reserve(1)).toThrow(/dispose/);
  });
});
