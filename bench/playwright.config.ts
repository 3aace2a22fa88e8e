// Dataset benchmark (not a test): the built app (vite build) served by `vite preview`, driven
// in the same system Chromium as the e2e tests. Its own port, so it can run beside the e2e run.
import { defineConfig } from '@playwright/test';
import { findChromium, chromiumArgs } from '../tests/chromium.ts';

export default defineConfig({
  testDir: '.',
  testMatch: 'dataset_bench.spec.ts',
  timeout: 600_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:4174',
    launchOptions: { executablePath: findChromium(), args: chromiumArgs() },
    trace: 'off',
  },
  webServer: {
    command: 'npx vite preview --host 127.0.0.1 --port 4174 --strictPort',
    url: 'http://127.0.0.1:4174',
    reuseExistingServer: false,
    timeout: 60_000,
    cwd: '..',
  },
});
