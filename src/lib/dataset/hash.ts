// Content hashing for image deduplication: the same bytes always give the same key, so an
// image shared by many samples (or imported twice) is stored once.

/** SHA-256 of the bytes, lower-case hex (64 chars). Works in browsers, workers and Node >= 20. */
export async function sha256Hex(data: Blob | ArrayBuffer | Uint8Array): Promise<string> {
  const bytes = data instanceof Blob ? await data.arrayBuffer() : data;
  const digest = await crypto.subtle.digest('SHA-256', bytes as BufferSource);
  const out = new Uint8Array(digest);
  let hex = '';
  for (const b of out) hex += b.toString(16).padStart(2, '0');
  return hex;
}
