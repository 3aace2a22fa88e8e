// Engine benchmark (not a test): Vitest browser mode in the same headless Chromium and WebGPU
// setup as the browser tests, so the engine's TypeScript runs unbundled as in the tests.
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import '../tests/node20_polyfills.ts';
import { findChromium, chromiumArgs } from '../tests/chromium.ts';

export default defineConfig({
  // entries: only the benchmark's own imports (the app's .svelte files are not part of it)
  optimizeDeps: { entries: ['bench/engine_bench.browser.ts'], include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'] },
  define: { __BENCH_FULL__: JSON.stringify(process.env.BENCH_FULL === '1') },
  test: {
    include: ['bench/engine_bench.browser.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    browser: {
      enabled: true,
      headless: true,
      screenshotFailures: false,
      provider: playwright({ launchOptions: { executablePath: findChromium(), args: chromiumArgs() } }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
