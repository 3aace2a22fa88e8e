// The one path from model files to a usable model: config.json -> VlmConfig, the processor
// files as parsed JSON/text, and the safetensors weights streamed tensor by tensor onto the GPU.
//
// Order matters for the user: small files first (a broken tokenizer fails in a second, not after
// a 500 MB download), then every weight's name and shape is checked against the config from the
// safetensors header (and the shard index) BEFORE its data is read, so a mismatched checkpoint
// fails early with the weight, the expected and actual shape, and the file named.
import type { LoadProgress, ModelSourceSpec } from '../../lib/api/engine_api';
import type { VlmConfig } from '../config';
import type { Quantization } from '../weights';
import { GpuWeights } from './gpu_weights';
import { configFromHub } from './hub_config';
import { parseSafetensorsIndex, SafetensorsFile, type TensorInfo } from './safetensors';
import { FolderSource, HubSource, MissingFileError, readJson, readText, UrlSource, type ModelSource } from './sources';
import { expectedWeights, isIgnorableWeight, parameterCount, shapeString, type WeightSpec } from './weight_names';

/** The processor files as read (null when the folder does not have them). */
export interface ModelFiles {
  tokenizerJson: unknown; // tokenizer.json
  tokenizerConfig: unknown; // tokenizer_config.json
  specialTokensMap: unknown; // special_tokens_map.json
  preprocessorConfig: unknown; // preprocessor_config.json
  processorConfig: unknown; // processor_config.json
  /** chat_template.jinja's text, else chat_template.json's `chat_template`; undefined if neither. */
  chatTemplate?: string;
  generationConfig: unknown; // generation_config.json
}

export interface LoadedModel {
  config: VlmConfig;
  weights: GpuWeights;
  files: ModelFiles;
  /** Parameters of the architecture (tied lm_head counted once). */
  paramCount: number;
  /** Which weight files were read, and the most bytes the reader held at once. */
  weightFiles: string[];
  maxBufferedBytes: number;
}

export interface LoadOptions {
  quantization: Quantization;
  q4GroupSize?: number;
  onProgress?: (p: LoadProgress) => void;
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

/** The ModelSource for an API source spec. */
export function openSource(spec: ModelSourceSpec): ModelSource {
  if (spec.kind === 'builtin') {
    const base = import.meta.env?.BASE_URL ?? '/';
    return new UrlSource(`${base}models/${spec.name}/`);
  }
  if (spec.kind === 'hub') return new HubSource(spec.repoId, spec.revision);
  return new FolderSource(spec.files);
}

async function optional<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof MissingFileError) return null;
    throw e;
  }
}

export async function loadModel(source: ModelSource, opts: LoadOptions): Promise<LoadedModel> {
  const progress = opts.onProgress;
  const download = (file: string) => (loaded: number, total: number | null) => progress?.({ file, loaded, total, phase: 'download' });
  const json = async (path: string) => readJson(await source.fetchFile(path, download(path)), source.label);
  const text = async (path: string) => readText(await source.fetchFile(path, download(path)));
  const named = (path: string) => `${path} (${source.label})`;

  const config = configFromHub(await json('config.json'), named('config.json'));

  const chatJinja = await optional(() => text('chat_template.jinja'));
  const chatJson = chatJinja === null ? await optional(() => json('chat_template.json')) : null;
  const files: ModelFiles = {
    tokenizerJson: await optional(() => json('tokenizer.json')),
    tokenizerConfig: await optional(() => json('tokenizer_config.json')),
    specialTokensMap: await optional(() => json('special_tokens_map.json')),
    preprocessorConfig: await optional(() => json('preprocessor_config.json')),
    processorConfig: await optional(() => json('processor_config.json')),
    generationConfig: await optional(() => json('generation_config.json')),
  };
  const template = chatJinja ?? (chatJson as { chat_template?: unknown } | null)?.chat_template;
  if (template !== undefined && template !== null) {
    if (typeof template !== 'string') throw new Error(`${named('chat_template.json')}: chat_template must be a string`);
    files.chatTemplate = template;
  }

  const expected = expectedWeights(config);
  const index = await optional(() => json(INDEX));
  let shards: string[];
  let weightMap: Map<string, string> | null = null;
  if (index !== null) {
    const parsed = parseSafetensorsIndex(index, named(INDEX));
    weightMap = parsed.weightMap;
    shards = parsed.shards;
    checkNames([...weightMap.keys()], expected, config, named(INDEX));
  } else {
    shards = [SINGLE];
  }

  const weights = new GpuWeights(config, { quantization: opts.quantization, q4GroupSize: opts.q4GroupSize });
  let maxBuffered = 0;
  try {
    const seen = new Set<string>();
    for (const shard of shards) {
      const label = named(shard);
      let f: SafetensorsFile;
      try {
        const src = await source.fetchFile(shard, download(shard));
        f = await SafetensorsFile.open(src.body, {
          file: label,
          size: src.size,
          onBytes: (loaded) => progress?.({ file: shard, loaded, total: src.size, phase: 'weights' }),
        });
      } catch (e) {
        if (e instanceof MissingFileError && shard === SINGLE) {
          throw new Error(`no weights in ${source.label}: neither ${SINGLE} nor ${INDEX} was found`);
        }
        throw e;
      }
      try {
        checkHeader(f.header.tensors, expected, config, label, shard, weightMap, seen);
        if (!weightMap) checkNames(f.header.tensors.map((t) => t.name), expected, config, label);
      } catch (e) {
        f.close();
        throw e;
      }
      for await (const t of f.tensors()) {
        if (!expected.has(t.name)) continue; // ignorable, checked above
        weights.add(t);
      }
      maxBuffered = Math.max(maxBuffered, f.stats.maxBufferedBytes);
    }
    const missing = [...expected.keys()].filter((n) => !seen.has(n));
    if (missing.length > 0) throw missingError(missing, expected, shards.map(named).join(', '));
  } catch (e) {
    weights.dispose();
    throw e;
  }
  return { config, weights, files, paramCount: parameterCount(config), weightFiles: shards, maxBufferedBytes: maxBuffered };
}

/** Every name listed must be expected (or ignorable) and every expected name listed. */
function checkNames(names: string[], expected: Map<string, WeightSpec>, config: VlmConfig, file: string): void {
  const listed = new Set(names);
  for (const n of names) {
    if (!expected.has(n) && !isIgnorableWeight(n, config)) throw unexpectedError(n, file);
  }
  const missing = [...expected.keys()].filter((n) => !listed.has(n));
  if (missing.length > 0) throw missingError(missing, expected, file);
}

function checkHeader(
  tensors: TensorInfo[],
  expected: Map<string, WeightSpec>,
  config: VlmConfig,
  file: string,
  shard: string,
  weightMap: Map<string, string> | null,
  seen: Set<string>,
): void {
  for (const t of tensors) {
    const spec = expected.get(t.name);
    if (!spec) {
      if (isIgnorableWeight(t.name, config)) continue;
      throw unexpectedError(t.name, file);
    }
    if (weightMap && weightMap.get(t.name) !== shard) {
      throw new Error(`${file}: weight ${t.name} is in this shard but the index puts it in ${weightMap.get(t.name)}`);
    }
    if (seen.has(t.name)) throw new Error(`${file}: weight ${t.name} appears in more than one shard`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new Error(
        `${file}: weight ${t.name} has shape ${shapeString(t.shape)}, but config.json implies ${shapeString(spec.shape)}`,
      );
    }
    seen.add(t.name);
  }
}

function unexpectedError(name: string, file: string): Error {
  return new Error(`${file}: unexpected weight ${name}: not part of an Idefics3 model with this config.json`);
}

function missingError(missing: string[], expected: Map<string, WeightSpec>, file: string): Error {
  const first = missing[0];
  const more = missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1, 4).join(', ')}${missing.length > 4 ? ', ...' : ''})` : '';
  return new Error(`${file}: weight ${first} ${shapeString(expected.get(first)!.shape)} is missing${more}`);
}
