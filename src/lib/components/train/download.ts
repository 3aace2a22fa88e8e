// Saving adapter files from the browser: one zip (fflate's zipSync, stored uncompressed since
// safetensors of floats barely compress) offered as a download.
import { zipSync } from 'fflate';
import type { AdapterFile } from '../../api/engine_api';

/** The files as one zip archive, each under `folder/`, as PEFT's from_pretrained expects a directory. */
export function zipAdapter(files: AdapterFile[], folder: string): Uint8Array<ArrayBuffer> {
  const entries: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const f of files) entries[`${folder}/${f.name}`] = [f.bytes, { level: 0 }];
  return zipSync(entries) as Uint8Array<ArrayBuffer>;
}

export function downloadBytes(bytes: Uint8Array<ArrayBuffer>, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  // The click has started the download; the URL is not needed after this task.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
