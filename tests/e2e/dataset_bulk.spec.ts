// Bulk actions, stats and export in the dataset workspace.
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { expect, test, type Page } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, pngFile, qaRecord } from './dataset_helpers';

async function importN(page: Page, n: number): Promise<void> {
  const pngs = Array.from({ length: n }, (_, i) => pngFile(`p${i}.png`, i + 1));
  const lines = Array.from({ length: n }, (_, i) => qaRecord(`p${i}.png`, `question ${i}`, 'x'.repeat(1 + (i % 4) * 10)));
  await importViaPicker(page, [...pngs, jsonlFile('data.jsonl', lines)]);
  await expect(page.getByTestId('filter-count')).toHaveText(`${n} / ${n}`);
}

async function splitCounts(page: Page): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of ['train', 'val', 'test']) {
    await page.getByTestId('filter-split').selectOption(s);
    const text = (await page.getByTestId('filter-count').textContent()) ?? '';
    out[s] = Number(text.split('/')[0].trim());
  }
  await page.getByTestId('filter-split').selectOption('all');
  return out;
}

test.beforeEach(async ({ page }) => {
  await freshWorkspace(page);
});

test('bulk random split by ratio with a seed is reproducible and stored', async ({ page }) => {
  await importN(page, 20);
  expect(await splitCounts(page)).toEqual({ train: 20, val: 0, test: 0 });
  await page.getByTestId('panel-bulk').click();
  await expect(page.getByTestId('bulk-scope')).toContainText('20 samples in the current filter');
  await page.getByTestId('split-seed').fill('7');
  await page.getByTestId('bulk-split').click();
  await expect.poll(async () => (await splitCounts(page)).train).toBeLessThan(20);
  const first = await splitCounts(page);
  expect(first.train + first.val + first.test).toBe(20);
  expect(first.train).toBeGreaterThan(first.val + first.test);
  const order = await page.getByTestId('sample-cell').evaluateAll((els) => els.map((e) => e.getAttribute('data-split')).join());

  // The same seed over the same samples gives the same assignment, also after a reload.
  await page.getByTestId('bulk-split').click();
  await page.reload();
  await expect(page.getByTestId('filter-count')).toHaveText('20 / 20');
  const again = await page.getByTestId('sample-cell').evaluateAll((els) => els.map((e) => e.getAttribute('data-split')).join());
  expect(again).toBe(order);

  // Set kind on a selection only.
  await page.getByTestId('panel-bulk').click();
  await page.locator('[data-testid="sample-cell"][data-index="0"] input[type="checkbox"]').check();
  await page.locator('[data-testid="sample-cell"][data-index="1"] input[type="checkbox"]').check();
  await expect(page.getByTestId('bulk-scope')).toContainText('2 samples selected');
  await page.getByLabel('kind to set').selectOption('general_instruction');
  await page.getByTestId('bulk-kind').click();
  await page.getByTestId('filter-kind').selectOption('general_instruction');
  await expect(page.getByTestId('filter-count')).toHaveText('2 / 20');
});

test('delete with undo restores the deleted samples, also in IndexedDB', async ({ page }) => {
  await importN(page, 4);
  await page.getByTestId('panel-bulk').click();
  await page.locator('[data-testid="sample-cell"][data-index="1"] input[type="checkbox"]').check();
  await page.locator('[data-testid="sample-cell"][data-index="2"] input[type="checkbox"]').check();
  await page.getByTestId('bulk-delete').click();
  await expect(page.getByTestId('filter-count')).toHaveText('2 / 2');
  await expect(page.getByTestId('undo-bar')).toContainText('Deleted 2 samples');
  await page.getByTestId('undo').click();
  await expect(page.getByTestId('filter-count')).toHaveText('4 / 4');
  await expect(page.getByTestId('undo-bar')).toHaveCount(0);
  await page.reload();
  await expect(page.getByTestId('filter-count')).toHaveText('4 / 4');
  // The images came back with the samples.
  await page.locator('[data-testid="sample-cell"][data-index="2"]').click();
  await expect(page.getByTestId('editor-images').getByTestId('thumb')).toBeVisible();
  await expect(page.getByTestId('sample-cell').getByTestId('thumb')).toHaveCount(4);
});

test('stats show split counts, the business:general ratio and answer lengths; export downloads zips', async ({ page }) => {
  await importN(page, 6);
  await page.getByTestId('panel-bulk').click();
  await page.locator('[data-testid="sample-cell"][data-index="5"] input[type="checkbox"]').check();
  await page.getByLabel('kind to set').selectOption('general_caption');
  await page.getByTestId('bulk-kind').click();
  await page.getByTestId('panel-stats').click();
  await expect(page.getByTestId('stats-split').locator('li[data-label="train"]')).toContainText('6');
  await expect(page.getByTestId('stats-ratio')).toContainText('5');
  await expect(page.getByTestId('stats-ratio')).toContainText('10');
  await expect(page.getByTestId('stats-lengths').locator('li')).not.toHaveCount(0);

  for (const id of ['export-llamafactory', 'export-hf']) {
    const download = page.waitForEvent('download');
    await page.getByTestId(id).click();
    const d = await download;
    expect(d.suggestedFilename()).toMatch(/\.zip$/);
    const entries = unzipSync(new Uint8Array(readFileSync((await d.path())!)));
    const names = Object.keys(entries);
    expect(names.filter((n) => n.endsWith('.png')).length).toBe(6);
    expect(names.some((n) => /\.jsonl?$/.test(n))).toBe(true);
  }
});
