// THE one path from a conversation and its images to model inputs, used by generation,
// evaluation and training alike (STYLE.md: one place that turns a sample into ids and labels).
//
//   turns --chat template--> text --tokenizer--> ids (one <image> id per placeholder)
//   images --Idefics3 preprocessing--> tiles + grid per image
//   each <image> id --> the Idefics3 expansion for its grid (prompt.ts)
//
// Training labels. SmolVLM's template has no {% generation %} markers (TRAPS.md), so assistant
// spans come from the template itself: rendering the turns before assistant turn i with
// add_generation_prompt gives the text up to and including "Assistant:", i.e. where the answer
// starts; the answer ends after the eos token (<end_of_utterance>) that closes the turn. Tokens
// whose first byte falls in such a span keep their id as label (HF convention: labels[t] =
// inputIds[t], the shift happens in the loss), everything else is -100: system and user text,
// role markers, image tokens, the newline after <end_of_utterance>. Text offsets become token
// positions through per-token byte lengths (tokenizer.ts), which are checked to add up.
// A token straddling the span start would stay masked; with GPT-2 style pre-tokenisation ":"
// and the answer's first word are always separate pre-tokens, so none does for SmolVLM.
import type { ModelInputs } from '../inputs';
import { countPlaceholders, type Turn } from '../../lib/dataset/schema';
import { byteLength } from './tokenizer';
import { preprocessImage, type RgbaImage } from './image_processor';
import type { Processor } from './processor';

/** A decoded image (browser: image_decode.ts decodeImage(blob)). */
export type ImageSource = RgbaImage;

export const IGNORE_INDEX = -100;

export interface BuildOptions {
  /** 'generate': prompt ending in "Assistant:", no labels. 'train': full conversation with labels. */
  mode: 'generate' | 'train';
  /** Override preprocessor_config.json's do_image_splitting (e.g. to save memory). */
  doImageSplitting?: boolean;
}

/** The prompt part of a conversation: the turns before its trailing assistant answer(s). */
export function promptTurns(turns: readonly Turn[]): Turn[] {
  let n = turns.length;
  while (n > 0 && turns[n - 1].role === 'assistant') n--;
  return turns.slice(0, n);
}

/** [start, end) character spans of the assistant answers in `full`, each closing eos included. */
function assistantSpans(proc: Processor, turns: readonly Turn[], full: string): [number, number][] {
  const eos = proc.tokenizer.eosToken;
  const spans: [number, number][] = [];
  turns.forEach((turn, i) => {
    if (turn.role !== 'assistant') return;
    const before = proc.applyChatTemplate(turns.slice(0, i), { addGenerationPrompt: true });
    const through = proc.applyChatTemplate(turns.slice(0, i + 1), { addGenerationPrompt: false });
    if (!full.startsWith(before) || !through.startsWith(before) || !full.startsWith(through)) {
      throw new Error(
        `chat template: rendering turn ${i + 1} (assistant) is not a prefix of the whole conversation, so its answer cannot be located for loss masking`,
      );
    }
    const start = before.length;
    const eosAt = eos ? through.lastIndexOf(eos) : -1;
    const end = eosAt >= start ? eosAt + eos!.length : through.length;
    spans.push([start, end]);
  });
  return spans;
}

/** (T) labels for `ids` encoded from `text`: the id inside the spans, IGNORE_INDEX elsewhere. */
function labelsFromSpans(proc: Processor, ids: number[], text: string, spans: [number, number][]): Int32Array {
  const offsets = proc.tokenizer.byteOffsets(ids, text); // (T+1)
  const byteSpans = spans.map(([s, e]) => [byteLength(text.slice(0, s)), byteLength(text.slice(0, e))]);
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX); // (T)
  for (let t = 0; t < ids.length; t++) {
    const b = offsets[t];
    if (byteSpans.some(([s, e]) => b >= s && b < e)) labels[t] = ids[t];
  }
  return labels;
}

/**
 * Turn one conversation and its images (in placeholder order) into model inputs.
 * Errors say what is wrong with the sample (placeholder/image count, missing answer, ...).
 */
export function buildModelInputs(proc: Processor, turns: readonly Turn[], images: readonly ImageSource[], opts: BuildOptions): ModelInputs {
  const nPlaceholders = countPlaceholders(turns);
  if (nPlaceholders !== images.length) {
    throw new Error(
      `sample: its turns have ${nPlaceholders} <image> placeholder(s) but ${images.length} image(s) were given; each image needs exactly one <image> in the text, in order`,
    );
  }

  let text: string;
  let spans: [number, number][] = [];
  if (opts.mode === 'generate') {
    if (turns.length > 0 && turns[turns.length - 1].role === 'assistant') {
      throw new Error('sample: a generation prompt must end with a user turn; drop the trailing assistant answer first (promptTurns)');
    }
    text = proc.applyChatTemplate(turns, { addGenerationPrompt: true });
  } else {
    if (!turns.some((t) => t.role === 'assistant')) {
      throw new Error('sample: training needs at least one assistant turn to learn from; this sample has none');
    }
    text = proc.applyChatTemplate(turns, { addGenerationPrompt: false });
    spans = assistantSpans(proc, turns, text);
  }

  const ids = proc.encode(text); // (T0) one <image> id per placeholder
  const labels0 = opts.mode === 'train' ? labelsFromSpans(proc, ids, text, spans) : null;

  const imageId = proc.special.image;
  const nImageIds = ids.reduce((n, id) => n + (id === imageId ? 1 : 0), 0);
  if (nImageIds !== images.length) {
    throw new Error(
      `sample: the rendered prompt holds ${nImageIds} <image> token(s) but ${images.length} image(s) were given (does a turn contain image-token text such as <row_1_col_1>?)`,
    );
  }

  const processed = images.map((img, k) => {
    try {
      return preprocessImage(img, proc.imageConfig, { doImageSplitting: opts.doImageSplitting });
    } catch (e) {
      throw new Error(`image ${k + 1} of ${images.length}: ${(e as Error).message}`);
    }
  });

  const outIds: number[] = [];
  const outLabels: number[] = [];
  let k = 0;
  ids.forEach((id, t) => {
    if (id === imageId) {
      const p = processed[k++];
      const expansion = proc.imagePromptIds(p.rows, p.cols);
      for (const e of expansion) {
        outIds.push(e);
        outLabels.push(IGNORE_INDEX);
      }
    } else {
      outIds.push(id);
      if (labels0) outLabels.push(labels0[t]);
    }
  });

  const nTiles = processed.reduce((n, p) => n + p.nTiles, 0);
  const S = proc.imageConfig.maxImageSize;
  const pixelValues = new Float32Array(nTiles * 3 * S * S); // (N, 3, S, S) tiles in image-token order
  let off = 0;
  for (const p of processed) {
    pixelValues.set(p.pixelValues, off);
    off += p.pixelValues.length;
  }

  const inputs: ModelInputs = { inputIds: Int32Array.from(outIds), pixelValues, nTiles };
  if (labels0) inputs.labels = Int32Array.from(outLabels);
  return inputs;
}
