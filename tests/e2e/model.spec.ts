// End to end: load the built-in tiny model from the Model tab, then ask it about an uploaded
// PNG in the Playground and watch the answer stream. The tiny model's answers are noise; what
// is checked is the whole path: worker, loader, GPU weights, processor, generation, streaming.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, pngFile, qaRecord } from './dataset_helpers';

/** The fixture model `npm run fixtures` writes (the same files the app serves at /models/tiny/). */
const TINY_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../public/models/tiny');

/** A real PNG made by the browser's own encoder: a 40x30 two-colour gradient. */
async function makePng(page: Page): Promise<Buffer> {
  const dataUrl = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 40;
    c.height = 30;
    const g = c.getContext('2d')!;
    const grad = g.createLinearGradient(0, 0, 40, 30);
    grad.addColorStop(0, '#d03030');
    grad.addColorStop(1, '#3050e0');
    g.fillStyle = grad;
    g.fillRect(0, 0, 40, 30);
    return c.toDataURL('image/png');
  });
  return Buffer.from(dataUrl.split(',')[1], 'base64');
}

test('load the tiny model, then ask about an uploaded image and see the answer stream', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto('/');
  await page.getByTestId('tab-model').click();
  await expect(page.getByTestId('model-none')).toBeVisible();
  await page.getByTestId('model-tiny').check();
  await page.getByTestId('model-load').click();

  // Per-file progress appears, then the loaded model with the GPU memory it holds.
  await expect(page.getByTestId('load-progress')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('load-progress')).toContainText('config.json');
  await expect(page.getByTestId('model-loaded')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await expect(page.getByTestId('model-status')).toContainText('tiny');
  await expect(page.getByTestId('gpu-memory')).not.toHaveText(/^0 B$/);

  await page.getByTestId('tab-playground').click();
  await expect(page.getByTestId('playground-no-model')).toHaveCount(0);
  await page.getByTestId('playground-upload').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: await makePng(page) });
  await expect(page.getByTestId('playground-preview')).toBeVisible();
  await page.getByTestId('playground-question').fill('What colour is this?');
  await page.getByTestId('max-new-tokens').fill('8');
  await page.getByTestId('playground-ask').click();

  await expect(page.getByTestId('stop-reason')).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('generate-error')).toHaveCount(0);
  await expect(page.getByTestId('answer-tokens')).toHaveText(/^[1-8] tokens$/);
  await expect(page.getByTestId('tokens-per-second')).toHaveText(/^\d+\.\d tokens\/s$/);
  const tps = Number((await page.getByTestId('tokens-per-second').textContent())!.split(' ')[0]);
  expect(tps).toBeGreaterThan(0);
  const firstAnswer = await page.getByTestId('answer-text').textContent();

  // A long sampled answer, cancelled once it has started streaming.
  await page.getByTestId('max-new-tokens').fill('300');
  await page.getByLabel('Temperature').fill('5');
  await page.getByTestId('playground-ask').click();
  await expect(page.getByTestId('answer-tokens')).toHaveText(/^([2-9]|\d\d+) tokens$/, { timeout: 120_000 });
  await page.getByTestId('playground-cancel').click();
  await expect(page.getByTestId('stop-reason')).toHaveText('cancelled', { timeout: 60_000 });
  await expect(page.getByTestId('playground-ask')).toBeEnabled();

  // Greedy again: the first answer comes back word for word.
  await page.getByTestId('max-new-tokens').fill('8');
  await page.getByLabel('Temperature').fill('0');
  await page.getByTestId('playground-ask').click();
  await expect(page.getByTestId('stop-reason')).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('answer-text')).toHaveText(firstAnswer ?? '');
});

test('a local folder without config.json is reported, naming the file', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'not-a-model-'));
  writeFileSync(join(dir, 'notes.txt'), 'not a model');
  await page.goto('/');
  await page.getByTestId('tab-model').click();
  await page.getByTestId('model-folder').setInputFiles(dir);
  await page.getByTestId('model-load').click();
  await expect(page.getByTestId('model-error')).toContainText('config.json is missing', { timeout: 60_000 });
  await expect(page.getByTestId('model-none')).toBeVisible();
});

test('the tiny model loads from a picked local folder, quantized', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('tab-model').click();
  await page.getByTestId('model-folder').setInputFiles(TINY_DIR);
  await expect(page.getByTestId('model-quant')).toHaveValue('q8');
  await page.getByTestId('model-load').click();
  await expect(page.getByTestId('model-loaded')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('model-status')).toContainText('q8 weights');
});

test('the Playground asks about a dataset sample, with its question filled in', async ({ page }) => {
  test.setTimeout(240_000);
  await freshWorkspace(page);
  await importViaPicker(page, [pngFile('red.png', 4, 20), jsonlFile('data.jsonl', [qaRecord('red.png', 'Which colour is it?', 'red')])]);
  await expect(page.getByTestId('import-counts')).toContainText('1 sample stored');

  await page.getByTestId('tab-model').click();
  await page.getByTestId('model-load').click(); // the tiny model is the default choice
  await expect(page.getByTestId('model-loaded')).toBeVisible({ timeout: 120_000 });

  await page.getByTestId('tab-playground').click();
  await page.getByTestId('playground-sample').selectOption({ label: 'red.png — Which colour is it?' });
  await expect(page.getByTestId('playground-question')).toHaveValue('Which colour is it?');
  await expect(page.getByTestId('playground-preview')).toBeVisible();
  await page.getByTestId('max-new-tokens').fill('3');
  await page.getByTestId('playground-ask').click();
  await expect(page.getByTestId('stop-reason')).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('generate-error')).toHaveCount(0);
});
