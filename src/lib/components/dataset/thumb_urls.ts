// Object URLs for thumbnails, shared and reference-counted by image hash. Samples often share
// an image (several questions about one picture), and creating an object URL for an
// IndexedDB-backed blob is not free (it registers the blob with the browser): one URL per
// distinct image in view, revoked as soon as no mounted thumbnail uses it.
export type GetImage = (hash: string) => Promise<Blob | undefined>;

interface Entry {
  refs: number;
  url: Promise<string | undefined>;
}

export class ThumbUrls {
  private readonly entries = new Map<string, Entry>();
  private readonly load: GetImage;

  constructor(load: GetImage) {
    this.load = load;
  }

  /** The URL for `hash` (undefined when the image is not stored); pair with release(). */
  acquire(hash: string): Promise<string | undefined> {
    let e = this.entries.get(hash);
    if (!e) {
      const url = this.load(hash).then(
        (blob) => (blob ? URL.createObjectURL(blob) : undefined),
        () => undefined,
      );
      e = { refs: 0, url };
      this.entries.set(hash, e);
    }
    e.refs++;
    return e.url;
  }

  release(hash: string): void {
    const e = this.entries.get(hash);
    if (!e || --e.refs > 0) return;
    this.entries.delete(hash);
    void e.url.then((u) => u && URL.revokeObjectURL(u));
  }

  /** How many distinct images hold a URL now (for tests). */
  get size(): number {
    return this.entries.size;
  }
}
