// Sample ids that sort in creation order. listSamples sorts by createdAt then id, and one
// import gives all its samples the same createdAt: ids that sort like the input keep the
// dataset in file order. A random tail keeps ids from two tabs or imports apart.

export function makeIdFactory(now: number = Date.now()): () => string {
  const stamp = Math.floor(now).toString(36).padStart(9, '0');
  let seq = 0;
  return () => {
    const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36).padStart(7, '0');
    return `${stamp}-${(seq++).toString(36).padStart(6, '0')}-${rand}`;
  };
}
