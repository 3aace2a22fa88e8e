import { expect, test } from '@playwright/test';

test('the app opens on the dataset workspace and reports the GPU from the worker', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'VLM Workbench' })).toBeVisible();
  await page.getByTestId('tab-gpu').click();
  await expect(page.getByTestId('gpu-report')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('gpu-vendor')).not.toHaveText('');
});
