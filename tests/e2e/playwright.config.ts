// End-to-end tests: the built app (vite build) served by `vite preview`, driven in the
// system Chromium with real WebGPU (SwiftShader where there is no GPU).
import { defineConfig } from '@playwright/test';
import { findChromium, chromiumArgs } from '../chromium.ts';

export default defineConfig({
  testDir: '.',
  testMatch: '**/*.spec.ts',
  timeout: 120_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:4173',
    launchOptions: { executablePath: findChromium(), args: chromiumArgs() },
    trace: 'off',
  },
  webServer: {
    command: 'npx vite preview --host 127.0.0.1 --port 4173 --strictPort',
    url: 'http://127.0.0.1:4173',
    reuseExistingServer: false,
    timeout: 60_000,
    cwd: '../..',
  },
});
