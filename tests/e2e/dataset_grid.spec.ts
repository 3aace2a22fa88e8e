// The grid with 5,000 samples: seeded through the real import path (one JSONL of 5,000
// records over a handful of images), it must keep only a few rows in the DOM and reach the
// last sample when scrolled to the bottom.
import { expect, test } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, pngFile, qaRecord } from './dataset_helpers';

test('5,000 samples: few rows in the DOM, scrolling to the bottom shows the last sample', async ({ page }) => {
  test.setTimeout(180_000);
  await freshWorkspace(page);
  const n = 5000;
  const images = Array.from({ length: 5 }, (_, i) => pngFile(`g${i}.png`, 50 + i));
  const lines = Array.from({ length: n }, (_, i) => qaRecord(`g${i % 5}.png`, `question number ${i}`, `answer ${i}`));
  await importViaPicker(page, [...images, jsonlFile('big.jsonl', lines)]);
  await expect(page.getByTestId('filter-count')).toHaveText(`${n} / ${n}`);

  const cells = page.getByTestId('sample-cell');
  const inDom = await cells.count();
  expect(inDom).toBeGreaterThan(0);
  expect(inDom).toBeLessThan(200);

  const grid = page.getByTestId('sample-grid');
  await grid.evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  const last = page.locator(`[data-testid="sample-cell"][data-index="${n - 1}"]`);
  await expect(last).toBeVisible();
  await expect(last).toContainText(`question number ${n - 1}`);
  await expect(last.getByTestId('thumb')).toBeVisible();
  expect(await cells.count()).toBeLessThan(200);
  await expect(page.locator('[data-testid="sample-cell"][data-index="0"]')).toHaveCount(0);

  // Text search narrows the 5,000 to one.
  await page.getByTestId('filter-text').fill('question number 4321');
  await expect(page.getByTestId('filter-count')).toHaveText(`1 / ${n}`);
});
