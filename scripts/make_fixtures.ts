// Writes the generated test fixtures: the tiny Idefics3 model folder under public/models/tiny/
// (served by Vite to the app, the browser tests and e2e) and, beside it in tiny/bf16-sharded/,
// the same weights as a sharded BF16 checkpoint for the loader's tests. Deterministic; files
// whose bytes are already right are left untouched so a running dev server does not reload.
// Run: `npm run fixtures` (also runs before dev, build and unit tests).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTinyModelFiles } from './fixtures/tiny_model.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function writeFolder(dir: string, files: Record<string, string | Uint8Array>): number {
  mkdirSync(dir, { recursive: true });
  let written = 0;
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf-8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    if (existsSync(path) && readFileSync(path).equals(bytes)) continue;
    writeFileSync(path, bytes);
    written++;
  }
  return written;
}

const tinyDir = join(root, 'public', 'models', 'tiny');
const n1 = writeFolder(tinyDir, makeTinyModelFiles('single'));
const n2 = writeFolder(join(tinyDir, 'bf16-sharded'), makeTinyModelFiles('bf16-sharded'));
console.log(`fixtures: public/models/tiny/ (${n1 + n2} files updated)`);
