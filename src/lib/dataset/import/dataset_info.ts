// LLaMA-Factory's dataset_info.json: a map from dataset name to where its records are
// (`file_name`, relative to the folder of dataset_info.json; a folder means every data file
// in it) and how to read them (`formatting`, `columns`, `tags`). Hub-hosted entries
// (hf_hub_url, ms_hub_url, ...) cannot be fetched here and are reported.

import { describeJsonError } from '../json_error';
import type { DatasetFormat } from './conversation';
import { dirname, joinPath } from './files';
import type { ImportIssue } from './types';

export interface DatasetEntry {
  name: string;
  /** Normalised path (file or folder) relative to the import root. */
  path: string;
  format: DatasetFormat;
}

const REMOTE_KEYS = ['hf_hub_url', 'ms_hub_url', 'om_hub_url', 'script_url', 'cloud_file_name'];

export function parseDatasetInfo(text: string, file: string, issues: ImportIssue[]): DatasetEntry[] {
  let info: unknown;
  try {
    info = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    const d = describeJsonError(text, e);
    issues.push({ file, line: d.line, reason: `not valid JSON: ${d.message}; its dataset settings were ignored` });
    return [];
  }
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    issues.push({ file, reason: 'dataset_info.json must be an object mapping dataset names to entries; ignored' });
    return [];
  }
  const out: DatasetEntry[] = [];
  for (const [name, e] of Object.entries(info as Record<string, unknown>)) {
    if (typeof e !== 'object' || e === null) {
      issues.push({ file, reason: `dataset "${name}": entry is not an object; ignored` });
      continue;
    }
    const entry = e as Record<string, unknown>;
    if (typeof entry.file_name !== 'string') {
      const remote = REMOTE_KEYS.find((k) => k in entry);
      issues.push({
        file,
        reason: remote
          ? `dataset "${name}" lives online (${remote}); this app imports local files only, download it first`
          : `dataset "${name}" has no "file_name"; ignored`,
      });
      continue;
    }
    out.push({
      name,
      path: joinPath(dirname(file), entry.file_name),
      format: {
        formatting: typeof entry.formatting === 'string' ? entry.formatting : undefined,
        columns: (entry.columns ?? undefined) as DatasetFormat['columns'],
        tags: (entry.tags ?? undefined) as DatasetFormat['tags'],
      },
    });
  }
  return out;
}
