// The virtualised sample grid, mounted alone in the test browser: with 5,000 samples only the
// visible rows are in the DOM, scrolling reaches the last sample, thumbnails are loaded on
// demand and their object URLs are revoked when their rows leave the view.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, tick, unmount } from 'svelte';
import SampleGrid from '../../src/lib/components/dataset/SampleGrid.svelte';
import { ThumbUrls } from '../../src/lib/components/dataset/thumb_urls';
import { DATASET_SCHEMA_VERSION, type Sample } from '../../src/lib/dataset/schema';

function fakeSample(i: number): Sample {
  return {
    v: DATASET_SCHEMA_VERSION,
    id: `s${String(i).padStart(5, '0')}`,
    projectId: 'p',
    images: [{ hash: `h${i}`, type: 'image/png', width: 8, height: 8, size: 100, name: `img${i}.png` }],
    turns: [
      { role: 'user', text: `<image>question ${i}` },
      { role: 'assistant', text: `answer ${i}` },
    ],
    split: 'train',
    kind: 'business',
    stage: 1,
    tags: [],
    source: `test:${i}`,
    createdAt: i,
    updatedAt: i,
  };
}

const frame = () => new Promise((r) => requestAnimationFrame(() => r(null)));
async function settle(): Promise<void> {
  flushSync();
  await tick();
  await frame();
  await frame();
  flushSync();
}

describe('SampleGrid', () => {
  let host: HTMLDivElement | null = null;
  let app: Record<string, unknown> | null = null;
  afterEach(() => {
    if (app) unmount(app);
    host?.remove();
    app = null;
    host = null;
    vi.restoreAllMocks();
  });

  it('keeps only visible rows in the DOM, reaches the last sample, and revokes thumbnails that leave', async () => {
    const n = 5000;
    const samples = Array.from({ length: n }, (_, i) => fakeSample(i));
    const requested: string[] = [];
    const pixel = new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], { type: 'image/png' });
    const getImage = async (hash: string) => {
      requested.push(hash);
      return pixel;
    };
    const created = vi.spyOn(URL, 'createObjectURL');
    const revoked = vi.spyOn(URL, 'revokeObjectURL');
    host = document.createElement('div');
    host.style.cssText = 'width: 620px; height: 480px; display: flex; flex-direction: column;';
    document.body.append(host);
    app = mount(SampleGrid, {
      target: host,
      props: { samples, currentId: null, selection: new Set<string>(), thumbs: new ThumbUrls(getImage), thumbDelayMs: 300, onpick: () => {}, ontoggle: () => {} },
    });
    await settle();
    await vi.waitFor(() => expect(host!.querySelectorAll('[data-testid="sample-cell"]').length).toBeGreaterThan(0));

    const viewport = host.querySelector<HTMLElement>('[data-testid="sample-grid"]')!;
    const cells = () => [...host!.querySelectorAll<HTMLElement>('[data-testid="sample-cell"]')];
    // 620px / 150px cells = 4 columns; 480px / 150px rows = 4 visible rows (+2 overscan below).
    expect(viewport.dataset.rows).toBe(String(n / 4));
    expect(cells().length).toBeLessThanOrEqual(4 * 8);
    expect(cells()[0].dataset.index).toBe('0');
    await vi.waitFor(() => expect(created.mock.calls.length).toBe(cells().length));
    expect(new Set(requested)).toEqual(new Set(cells().map((c) => `h${c.dataset.index}`)));
    const firstUrls = created.mock.results.map((r) => r.value as string);

    // A fast scroll: rows that are in view for one frame each never read their images.
    // Ten rows per step, so each of these rows is mounted for one step only (< thumbDelayMs).
    for (let r = 100; r < 300; r += 10) {
      viewport.scrollTop = r * 150;
      viewport.dispatchEvent(new Event('scroll'));
      await settle();
    }
    viewport.scrollTop = viewport.scrollHeight;
    viewport.dispatchEvent(new Event('scroll'));
    await settle();
    await new Promise((r) => setTimeout(r, 200));
    expect(requested.filter((h) => Number(h.slice(1)) >= 400 && Number(h.slice(1)) < 1200)).toEqual([]);
    await vi.waitFor(() => expect(cells().some((c) => c.dataset.index === String(n - 1))).toBe(true));
    expect(cells().length).toBeLessThanOrEqual(4 * 8);
    expect(cells().every((c) => Number(c.dataset.index) >= n - 4 * 8)).toBe(true);
    // Every thumbnail of the first rows was revoked when its row left the DOM.
    const revokedUrls = new Set(revoked.mock.calls.map((c) => c[0]));
    for (const u of firstUrls) expect(revokedUrls.has(u)).toBe(true);
    // The last cell shows the last sample and its thumbnail is loaded.
    const lastCell = cells().find((c) => c.dataset.index === String(n - 1))!;
    expect(lastCell.textContent).toContain(`question ${n - 1}`);
    await vi.waitFor(() => expect(lastCell.querySelector('img')).not.toBeNull());
  });

  it('scrolls the current sample into view when it changes', async () => {
    const samples = Array.from({ length: 400 }, (_, i) => fakeSample(i));
    host = document.createElement('div');
    host.style.cssText = 'width: 620px; height: 480px; display: flex; flex-direction: column;';
    document.body.append(host);
    const props = $state({ samples, currentId: null as string | null, selection: new Set<string>(), thumbs: new ThumbUrls(async () => undefined), onpick: () => {}, ontoggle: () => {} });
    app = mount(SampleGrid, { target: host, props });
    await settle();
    props.currentId = samples[300].id;
    await settle();
    await vi.waitFor(() => {
      const cur = host!.querySelector<HTMLElement>('.cell.current');
      expect(cur?.dataset.index).toBe('300');
    });
  });

  it('ThumbUrls shares one object URL per image and revokes it when the last user releases it', async () => {
    const created = vi.spyOn(URL, 'createObjectURL');
    const revoked = vi.spyOn(URL, 'revokeObjectURL');
    const loads: string[] = [];
    const thumbs = new ThumbUrls(async (h) => {
      loads.push(h);
      return h === 'gone' ? undefined : new Blob(['x']);
    });
    const [u1, u2] = await Promise.all([thumbs.acquire('a'), thumbs.acquire('a')]);
    expect(u1).toBe(u2);
    expect(loads).toEqual(['a']);
    expect(created).toHaveBeenCalledTimes(1);
    thumbs.release('a');
    await tick();
    expect(revoked).not.toHaveBeenCalled();
    thumbs.release('a');
    await vi.waitFor(() => expect(revoked).toHaveBeenCalledWith(u1));
    expect(thumbs.size).toBe(0);
    expect(await thumbs.acquire('gone')).toBeUndefined();
  });
});
