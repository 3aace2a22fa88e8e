// Import paths of the dataset workspace: file picker (with a report naming a bad line),
// drag and drop, folder picker, zip; storage usage; a full disk that keeps what was stored.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { expect, test } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, makePng, pngFile, qaRecord } from './dataset_helpers';

test.beforeEach(async ({ page }) => {
  await freshWorkspace(page);
});

test('file picker imports images and JSONL; the report lists the bad line with file:line', async ({ page }) => {
  const data = jsonlFile('data.jsonl', [
    qaRecord('a.png', 'What colour?', 'red'),
    qaRecord('b.png', 'What shape?', 'square'),
    '{"messages": [oops',
    qaRecord('missing.png', 'Where?', 'nowhere'),
  ]);
  await importViaPicker(page, [pngFile('a.png', 1), pngFile('b.png', 2), pngFile('c.png', 3), data]);

  const issues = page.getByTestId('import-issue');
  await expect(issues).toHaveCount(2);
  await expect(issues.filter({ hasText: 'data.jsonl:3' })).toContainText('not valid JSON');
  await expect(issues.filter({ hasText: 'data.jsonl:4' })).toContainText('missing.png');
  // a.png and b.png are labelled by the JSONL, c.png becomes an unlabelled sample.
  await expect(page.getByTestId('import-counts')).toContainText('3 samples stored');
  await expect(page.getByTestId('filter-count')).toHaveText('3 / 3');
  await expect(page.getByTestId('sample-cell')).toHaveCount(3);
  await expect(page.getByTestId('sample-cell').first().getByTestId('thumb')).toBeVisible();
  await page.getByTestId('filter-labelled').selectOption('unlabelled');
  await expect(page.getByTestId('filter-count')).toHaveText('1 / 3');
});

test('drag and drop imports the dropped files', async ({ page }) => {
  const png = makePng(6, 6, 9).toString('base64');
  const line = JSON.stringify(qaRecord('d.png', 'Dropped?', 'yes'));
  const dt = await page.evaluateHandle(
    ({ png, line }) => {
      const dt = new DataTransfer();
      const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], 'd.png', { type: 'image/png' }));
      dt.items.add(new File([line + '\n'], 'drop.jsonl'));
      return dt;
    },
    { png, line },
  );
  await page.getByTestId('drop-zone').dispatchEvent('dragover', { dataTransfer: dt });
  await page.getByTestId('drop-zone').dispatchEvent('drop', { dataTransfer: dt });
  await expect(page.getByTestId('import-counts')).toContainText('1 sample stored');
  await expect(page.getByTestId('turn-text').nth(1)).toHaveValue('yes');
});

test('folder picker and zip import resolve image paths relative to the data file', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlm-folder-'));
  mkdirSync(join(dir, 'set', 'images'), { recursive: true });
  writeFileSync(join(dir, 'set', 'images', 'f1.png'), makePng(8, 8, 21));
  writeFileSync(join(dir, 'set', 'images', 'f2.png'), makePng(8, 8, 22));
  writeFileSync(
    join(dir, 'set', 'train.jsonl'),
    [qaRecord('images/f1.png', 'one?', '1'), qaRecord('images/f2.png', 'two?', '2')].map((r) => JSON.stringify(r)).join('\n'),
  );
  await page.getByTestId('import-folder').setInputFiles(join(dir, 'set'));
  await expect(page.getByTestId('import-counts')).toContainText('2 samples stored');
  await expect(page.getByTestId('import-issue')).toHaveCount(0);

  const zip = zipSync({
    'pack/data.jsonl': new TextEncoder().encode(JSON.stringify(qaRecord('img/z.png', 'zipped?', 'yes')) + '\n'),
    'pack/img/z.png': new Uint8Array(makePng(8, 8, 23)),
  });
  await page.getByTestId('import-files').setInputFiles({ name: 'pack.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  await expect(page.getByTestId('import-counts')).toContainText('1 sample stored');
  await expect(page.getByTestId('filter-count')).toHaveText('3 / 3');
});

test('storage usage is shown against the quota', async ({ page }) => {
  await expect(page.getByTestId('storage-usage')).toHaveText(/^\d+(\.\d)? (B|KB|MB|GB) of \d+(\.\d)? (B|KB|MB|GB|TB)$/);
  await importViaPicker(page, [pngFile('a.png', 1, 64)]);
  await expect(page.getByTestId('storage-usage')).not.toHaveText(/^0 B of/);
});

test('a full disk is reported plainly and what was stored before stays', async ({ page }) => {
  await importViaPicker(page, [pngFile('keep.png', 5)]);
  await expect(page.getByTestId('filter-count')).toHaveText('1 / 1');
  // Playwright's contexts are off the record, where Chromium ignores a quota override, so the
  // full disk is simulated where the browser would report it: after 250 more record writes,
  // IndexedDB put() fails with a QuotaExceededError, as Chromium's does when the quota is hit.
  await page.evaluate(() => {
    let allowed = 250;
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      if (allowed-- <= 0) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.call(this, value, key);
    };
  });
  // 300 records over one image: the app writes 200 per transaction, so the first 200 fit
  // and the second transaction is refused as a whole.
  const lines = Array.from({ length: 300 }, (_, i) => qaRecord('one.png', `q${i}`, `a${i}`));
  await page.getByTestId('import-files').setInputFiles([pngFile('one.png', 6), jsonlFile('many.jsonl', lines)]);
  await expect(page.getByTestId('storage-full')).toContainText('storage is full: 200 of 300 new samples were stored');
  await expect(page.getByTestId('filter-count')).toHaveText('201 / 201');
  await page.reload();
  await expect(page.getByTestId('dataset-workspace')).toHaveAttribute('data-loaded', 'true');
  await expect(page.getByTestId('filter-count')).toHaveText('201 / 201');
});
