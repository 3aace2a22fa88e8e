// End to end: the Train tab. Import a few labelled samples through the dataset picker, load
// the built-in tiny model, start a short LoRA run from the Train tab and watch the step counter
// and the loss chart update in the worker's events, pause and resume it, stop it (a checkpoint
// appears), export the adapter as a PEFT zip and import it back, and resume the run from its
// checkpoint to the end. Kept to a few
// steps: SwiftShader is slow.
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { expect, test } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, pngFile, qaRecord } from './dataset_helpers';

test('the Train tab says what is missing before a model is loaded', async ({ page }) => {
  await freshWorkspace(page);
  await page.getByTestId('tab-train').click();
  await expect(page.getByTestId('train-no-model')).toContainText('load one in the Model tab');
  await expect(page.getByTestId('train-no-data')).toContainText('No labelled train-split samples');
  await expect(page.getByTestId('train-start')).toBeDisabled();
});

test('train the tiny model from the Train tab: steps and loss chart update, pause/resume, stop, export/import, resume from checkpoint', async ({ page }) => {
  test.setTimeout(480_000);
  await freshWorkspace(page);
  await importViaPicker(page, [
    pngFile('red.png', 4, 16),
    pngFile('blue.png', 9, 16),
    pngFile('grey.png', 13, 16),
    jsonlFile('data.jsonl', [
      qaRecord('red.png', 'Which colour is it?', 'red'),
      qaRecord('blue.png', 'Which colour is it?', 'blue'),
      { ...qaRecord('grey.png', 'Which colour is it?', 'grey'), split: 'val' },
    ]),
  ]);
  await expect(page.getByTestId('import-counts')).toContainText('3 samples stored');

  await page.getByTestId('tab-model').click();
  await page.getByTestId('model-load').click(); // the tiny model is the default choice
  await expect(page.getByTestId('model-loaded')).toBeVisible({ timeout: 120_000 });

  await page.getByTestId('tab-train').click();
  await expect(page.getByTestId('train-data')).toContainText('2 business + 0 general labelled train samples, 1 labelled validation');
  // The overfit preset, shortened: 2 samples x 3 epochs, one sample per step, eval on the train set.
  await expect(page.getByTestId('train-preset')).toHaveValue('overfit');
  await expect(page.getByTestId('eval-split')).toHaveValue('train');
  await page.getByTestId('grad-accum').fill('1');
  await page.getByTestId('stage-epochs').fill('3');
  await page.getByTestId('stage-lr').fill('0.01');
  await page.getByTestId('eval-every').fill('2');
  await page.getByTestId('train-start').click();

  await expect(page.getByTestId('train-status')).toHaveText('running');
  await expect(page.getByTestId('train-pause')).toBeEnabled();
  // A second start is not offered while the run is active.
  await expect(page.getByTestId('train-start')).toBeDisabled();
  await expect(page.getByTestId('train-step')).toHaveText('1 / 6', { timeout: 240_000 });
  await expect(page.getByTestId('train-loss')).toHaveText(/^\d+\.\d{4}$/);
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-train-points', '1');
  await expect(page.getByTestId('loss-chart-train')).toBeVisible();
  await expect(page.getByTestId('train-step')).toHaveText('2 / 6', { timeout: 120_000 });
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-train-points', '2');
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-eval-points', '1', { timeout: 60_000 });

  // Pause takes effect between steps; Resume continues.
  await page.getByTestId('train-pause').click();
  await expect(page.getByTestId('train-status')).toHaveText('paused', { timeout: 120_000 });
  await expect(page.getByTestId('train-resume')).toBeEnabled();
  await expect(page.getByTestId('train-notices')).toContainText('Paused after step');
  await page.getByTestId('train-resume').click();
  await expect(page.getByTestId('train-status')).toHaveText('running');

  await page.getByTestId('train-stop').click();
  await expect(page.getByTestId('train-status')).toHaveText('stopped', { timeout: 120_000 });
  await expect(page.getByTestId('train-error')).toHaveCount(0);
  await expect(page.getByTestId('train-start')).toBeEnabled();
  const row = page.getByTestId('checkpoint-row').first();
  await expect(row).toContainText('Overfit check (train set)');
  await expect(row).toContainText('stop');
  await expect(page.getByTestId('checkpoint-resume').first()).toBeEnabled();

  await expect(page.getByTestId('adapter-info')).toContainText('Trained');
  const download = page.waitForEvent('download');
  await page.getByTestId('adapter-export').click();
  const file = await download;
  expect(file.suggestedFilename()).toBe('tiny-lora.zip');
  const zip = unzipSync(new Uint8Array(readFileSync(await file.path())));
  expect(Object.keys(zip).sort()).toEqual(['tiny-lora/adapter_config.json', 'tiny-lora/adapter_model.safetensors']);
  const cfg = JSON.parse(new TextDecoder().decode(zip['tiny-lora/adapter_config.json']));
  expect(cfg).toMatchObject({ peft_type: 'LORA', r: 16, lora_alpha: 32 });

  // Import the exported files back: the adapter on the model is now the imported one.
  await page.getByTestId('adapter-import-files').setInputFiles([
    { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from(zip['tiny-lora/adapter_config.json']) },
    { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(zip['tiny-lora/adapter_model.safetensors']) },
  ]);
  await expect(page.getByTestId('adapter-info')).toContainText('Imported');
  await expect(page.getByTestId('adapter-error')).toHaveCount(0);

  // Resume the stopped run from its checkpoint: it runs to the end, and its curve keeps the
  // points from before the stop (fetched from the worker) ahead of the new ones.
  await page.getByTestId('checkpoint-resume').first().click();
  await expect(page.getByTestId('train-status')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('train-step')).toHaveText('6 / 6');
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-train-points', '6');
  await expect(page.getByTestId('train-notices')).toContainText('Resumed run "Overfit check (train set)"');
});
