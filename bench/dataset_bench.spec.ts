// Dataset benchmark: import throughput through the real picker -> import -> IndexedDB path,
// and the virtualised grid with 5,000 samples (load after reload, and scrolling). Timings are
// taken inside the page (performance.now()) so Playwright's polling does not count. Results
// are merged by name into bench/results.json; nothing here asserts a speed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page } from '@playwright/test';
import { freshWorkspace, jsonlFile, pngFile, qaRecord, type FilePayload } from '../tests/e2e/dataset_helpers';

interface Row {
  name: string;
  model: string;
  path: string;
  value: number;
  unit: string;
  derived?: boolean;
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results.json');

function record(rows: Row[]): void {
  const old: Row[] = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as { results: Row[] }).results : [];
  const names = new Set(rows.map((r) => r.name));
  const results = [...old.filter((r) => !names.has(r.name)), ...rows];
  writeFileSync(RESULTS, JSON.stringify({ results }, null, 2) + '\n');
  for (const r of rows) console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}`);
}
const row = (name: string, value: number, unit: string): Row => ({ name, model: '-', path: 'dataset', value, unit });

/** Picks files and returns the ms from the input's change event to the import report appearing. */
async function timedImport(page: Page, files: FilePayload[]): Promise<number> {
  const done = page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        let t0 = 0;
        document.addEventListener('change', () => (t0 = performance.now()), { capture: true, once: true });
        const obs = new MutationObserver(() => {
          if (t0 > 0 && document.querySelector('[data-testid="import-report"]')) {
            obs.disconnect();
            resolve(performance.now() - t0);
          }
        });
        obs.observe(document.body, { childList: true, subtree: true });
      }),
  );
  await page.getByTestId('import-files').setInputFiles(files);
  return done;
}

test('dataset: import throughput and 5,000-sample grid', async ({ page }) => {
  await page.setViewportSize({ width: 1400, height: 900 });

  // 1. 300 distinct 64x64 PNGs, as loose images (each becomes an unlabelled sample).
  await freshWorkspace(page);
  const nImages = 300;
  const pngs = Array.from({ length: nImages }, (_, i) => pngFile(`img${i}.png`, i + 1, 64));
  const importMs = await timedImport(page, pngs);
  await expect(page.getByTestId('import-counts')).toContainText(`${nImages} samples stored`);

  // 2. 5,000 labelled samples, each with its own 32x32 image, through the same import path.
  await freshWorkspace(page);
  const n = 5000;
  const imgs = Array.from({ length: n }, (_, i) => pngFile(`g${i}.png`, 1000 + i, 32));
  const lines = Array.from({ length: n }, (_, i) => qaRecord(`g${i}.png`, `question ${i}`, `answer ${i}`));
  const import5kMs = await timedImport(page, [...imgs, jsonlFile('big.jsonl', lines)]);
  await expect(page.getByTestId('filter-count')).toHaveText(`${n} / ${n}`);

  // 3. Reload: navigation start -> 5,000 samples read from IndexedDB and the grid's first cells shown.
  await page.reload();
  const loadMs = await page.evaluate(
    (n) =>
      new Promise<number>((resolve) => {
        const check = () => {
          const count = document.querySelector('[data-testid="filter-count"]')?.textContent ?? '';
          if (count.startsWith(`${n} /`) && document.querySelector('[data-testid="sample-cell"]')) resolve(performance.now());
          else requestAnimationFrame(check);
        };
        check();
      }),
    n,
  );

  // 4. Scrolling, timed per animation frame: idle frames (the floor of this browser), wheel-like
  // steps of 60 px, and jumps across the whole grid (every visible row replaced each frame).
  const scroll = await page.evaluate(async () => {
    const el = document.querySelector<HTMLElement>('[data-testid="sample-grid"]')!;
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const timed = async (steps: number, at: (i: number) => number | null) => {
      await frame();
      const t0 = performance.now();
      for (let i = 1; i <= steps; i++) {
        const top = at(i);
        if (top !== null) el.scrollTop = top;
        await frame();
      }
      return (performance.now() - t0) / steps;
    };
    const idle = await timed(60, () => null);
    el.scrollTop = 0;
    const wheel = await timed(120, (i) => i * 60);
    const jump = await timed(60, (i) => (el.scrollHeight * i) / 60);
    return { idle, wheel, jump };
  });
  const cellsInDom = await page.getByTestId('sample-cell').count();

  record([
    row('dataset_import_images', nImages / (importMs / 1000), 'images/s'),
    row('dataset_import_5000_labelled', n / (import5kMs / 1000), 'samples/s'),
    row('dataset_grid_load_5000', loadMs, 'ms'),
    row('dataset_grid_idle_frame', scroll.idle, 'ms/frame'),
    row('dataset_grid_scroll_wheel_frame_5000', scroll.wheel, 'ms/frame'),
    row('dataset_grid_scroll_jump_frame_5000', scroll.jump, 'ms/frame'),
    row('dataset_grid_cells_in_dom_5000', cellsInDom, 'cells'),
  ]);
});
