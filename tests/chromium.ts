// Where the test and benchmark runs find Chromium, and how they launch it.
// Order: $CHROME_PATH, Debian's /usr/bin/chromium, then Playwright's own download.
// Browsers cannot be downloaded on the project's machines, so a missing browser is a
// hard, explained failure rather than a silent skip.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright';

export function findChromium(): string {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  let bundled = '';
  try {
    bundled = chromium.executablePath();
  } catch {
    bundled = '';
  }
  if (bundled && existsSync(bundled)) return bundled;
  throw new Error(
    'No Chromium found. Set CHROME_PATH to a Chrome/Chromium binary, or on Debian run ' +
      '`apt-get install -y chromium` (gives /usr/bin/chromium), or `npx playwright install chromium` ' +
      'where downloads are allowed.',
  );
}

// On a machine without a GPU these flags give real WebGPU through SwiftShader (Vulkan on the
// CPU). With a GPU present, set VLM_REAL_GPU=1 to use the real adapter instead.
export function chromiumArgs(): string[] {
  const common = [
    '--no-sandbox',
    '--enable-unsafe-webgpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  if (process.env.VLM_REAL_GPU === '1') return [...common, '--enable-features=Vulkan'];
  return [
    ...common,
    '--enable-features=Vulkan',
    '--use-vulkan=swiftshader',
    '--use-webgpu-adapter=swiftshader',
  ];
}
