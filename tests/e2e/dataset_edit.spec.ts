// Editing in the dataset workspace: saving a sample, persistence across reload, the JSON
// answer check while typing, keyboard navigation and split keys, project settings.
import { expect, test, type Page } from '@playwright/test';
import { freshWorkspace, importViaPicker, jsonlFile, pngFile, qaRecord } from './dataset_helpers';

async function importThree(page: Page): Promise<void> {
  await importViaPicker(page, [
    pngFile('a.png', 1),
    pngFile('b.png', 2),
    pngFile('c.png', 3),
    jsonlFile('data.jsonl', [qaRecord('a.png', 'q-a', 'ans-a'), qaRecord('b.png', 'q-b', 'ans-b'), qaRecord('c.png', 'q-c', 'ans-c')]),
  ]);
  await expect(page.getByTestId('filter-count')).toHaveText('3 / 3');
}

const cell = (page: Page, i: number) => page.locator(`[data-testid="sample-cell"][data-index="${i}"]`);
const answer = (page: Page) => page.locator('[data-testid="turn"][data-role="assistant"] textarea');

test.beforeEach(async ({ page }) => {
  await freshWorkspace(page);
  await importThree(page);
});

test('editing a sample and saving survives a reload', async ({ page }) => {
  await cell(page, 1).click();
  await expect(answer(page)).toHaveValue('ans-b');
  const question = page.locator('[data-testid="turn"][data-role="user"] textarea');
  await question.fill('q-b without placeholder');
  await expect(page.getByTestId('placeholder-mismatch')).toContainText('0 <image> placeholders for 1 image');
  await question.fill('<image>q-b');
  await expect(page.getByTestId('placeholder-mismatch')).toHaveCount(0);
  await answer(page).fill('a better answer');
  await expect(page.getByTestId('editor-dirty')).toBeVisible();
  await page.getByTestId('edit-tags').fill('hard, night');
  await page.getByTestId('edit-kind').selectOption('general_caption');
  await page.keyboard.press('Control+s');
  await expect(page.getByTestId('editor-dirty')).toHaveCount(0);

  // Turns: add a system turn and a follow-up, then remove the follow-up again.
  await page.getByTestId('toggle-system').check();
  await page.locator('[data-testid="turn"][data-role="system"] textarea').fill('Be brief.');
  await page.getByTestId('add-turn').click();
  await expect(page.getByTestId('turn')).toHaveCount(4);
  await page.getByTestId('turn-remove').last().click();
  await page.getByTestId('editor-save').click();
  await expect(page.getByTestId('editor-dirty')).toHaveCount(0);

  await page.reload();
  await expect(page.getByTestId('dataset-workspace')).toHaveAttribute('data-loaded', 'true');
  await expect(page.getByTestId('filter-count')).toHaveText('3 / 3');
  await cell(page, 1).click();
  await expect(answer(page)).toHaveValue('a better answer');
  await expect(page.getByTestId('turn')).toHaveCount(3);
  await expect(page.locator('[data-testid="turn"][data-role="system"] textarea')).toHaveValue('Be brief.');
  await expect(page.getByTestId('edit-tags')).toHaveValue('hard, night');
  await expect(page.getByTestId('edit-kind')).toHaveValue('general_caption');
  await page.getByTestId('filter-tag').selectOption('night');
  await expect(page.getByTestId('filter-count')).toHaveText('1 / 3');
});

test('with a JSON answer format the answer is checked while typing', async ({ page }) => {
  await page.getByTestId('panel-project').click();
  await page.getByTestId('project-name').fill('Parts inspection');
  await page.getByTestId('answer-format-type').selectOption('json');
  await page.getByTestId('answer-format-items').fill('color\nshape');
  await page.getByTestId('answer-format-items').blur();
  await page.getByTestId('project-ratio').fill('5');
  await page.getByTestId('project-save').click();
  await expect(page.getByTestId('project-save')).toBeDisabled();

  await page.getByTestId('panel-editor').click();
  await answer(page).fill('{"color": "red"}');
  await expect(page.getByTestId('answer-errors')).toContainText('shape');
  await answer(page).fill('{"color": "red", "shape": ');
  await expect(page.getByTestId('answer-errors')).toBeVisible();
  await answer(page).fill('{"color": "red", "shape": "round"}');
  await expect(page.getByTestId('answer-errors')).toHaveCount(0);
  await expect(page.getByTestId('answer-ok')).toBeVisible();

  // The project settings are stored too.
  await page.reload();
  await page.getByTestId('panel-project').click();
  await expect(page.getByTestId('project-name')).toHaveValue('Parts inspection');
  await expect(page.getByTestId('answer-format-items')).toHaveValue('color\nshape');
  await expect(page.getByTestId('project-ratio')).toHaveValue('5');
});

test('keyboard: j/k and arrows move, 1/2/3 set the split, not while typing unless with Alt', async ({ page }) => {
  await expect(page.getByTestId('shortcut-help')).toContainText('Ctrl+Enter');
  await expect(cell(page, 0)).toHaveClass(/current/);
  await page.keyboard.press('j');
  await expect(cell(page, 1)).toHaveClass(/current/);
  await page.keyboard.press('ArrowDown');
  await expect(cell(page, 2)).toHaveClass(/current/);
  await page.keyboard.press('k');
  await expect(cell(page, 1)).toHaveClass(/current/);
  await page.keyboard.press('2');
  await expect(cell(page, 1)).toHaveAttribute('data-split', 'val');
  await page.keyboard.press('3');
  await expect(cell(page, 1)).toHaveAttribute('data-split', 'test');

  // In a text field a plain 1 is text; Alt+1 still assigns the split.
  await answer(page).click();
  await page.keyboard.press('End');
  await page.keyboard.press('1');
  await expect(answer(page)).toHaveValue('ans-b1');
  await expect(cell(page, 1)).toHaveAttribute('data-split', 'test');
  await page.keyboard.press('Alt+1');
  await expect(cell(page, 1)).toHaveAttribute('data-split', 'train');
  // Ctrl+Enter saves and moves on.
  await page.keyboard.press('Control+Enter');
  await expect(cell(page, 2)).toHaveClass(/current/);

  await page.reload();
  await expect(page.getByTestId('filter-count')).toHaveText('3 / 3');
  await expect(cell(page, 1)).toHaveAttribute('data-split', 'train');
  await cell(page, 1).click();
  await expect(answer(page)).toHaveValue('ans-b1');
});
