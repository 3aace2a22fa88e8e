/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { playwright } from '@vitest/browser-playwright';
import './tests/node20_polyfills.ts';
import { findChromium, chromiumArgs } from './tests/chromium.ts';

// Heavy dependencies are pre-bundled up front: discovered mid-run, Vite would reload the
// test page and the browser run would fail at random.
const heavyDeps = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu', 'comlink', 'idb-keyval', 'fflate'];

export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  worker: { format: 'es' },
  optimizeDeps: { include: heavyDeps, exclude: ['@huggingface/transformers'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['tests/node/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: mode === 'test' ? { executablePath: findChromium(), args: chromiumArgs() } : {},
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
}));
