// `npm run bench [-- --full]`: every benchmark, in the same headless Chromium the tests use.
// Not a test: it asserts nothing about speed, it writes bench/results.json
//   {"results":[{"name","model","path","value","unit","derived"?}]}
// for people (and later CI dashboards) to read. Runs, in order:
//   1. the dataset benchmark (import throughput, 5,000-sample grid) against the built app;
//   2. the engine benchmark (prefill, decode, peak GPU memory; custom kernels vs stock tfjs).
// --full also runs whole SmolVLM-256M-sized models once (minutes under SwiftShader).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const full = process.argv.includes('--full');
const env = { ...process.env, BENCH_FULL: full ? '1' : '0' };
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);

function step(name: string, cmd: string, args: string[]): void {
  if (only && only !== name) return;
  console.log(`\n== bench: ${name}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`bench step "${name}" failed (exit ${r.status})`);
    process.exitCode = 1;
  }
}

step('fixtures', 'npx', ['tsx', 'scripts/make_fixtures.ts']);
if (existsSync('bench/playwright.config.ts')) {
  step('build', 'npx', ['vite', 'build']);
  step('dataset', 'npx', ['playwright', 'test', '-c', 'bench/playwright.config.ts']);
}
if (existsSync('bench/vitest.config.ts')) {
  step('engine', 'npx', ['vitest', 'run', '-c', 'bench/vitest.config.ts']);
}

if (existsSync('bench/results.json')) {
  const { results } = JSON.parse(readFileSync('bench/results.json', 'utf8')) as {
    results: { name: string; model: string; path: string; value: number; unit: string; derived?: boolean }[];
  };
  console.log('\n== bench/results.json');
  for (const r of results) {
    console.log(`${r.name.padEnd(34)} ${r.model.padEnd(14)} ${r.path.padEnd(8)} ${String(+r.value.toPrecision(4)).padStart(12)} ${r.unit}${r.derived ? ' (derived)' : ''}`);
  }
}
