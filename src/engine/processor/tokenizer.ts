// The text side of the processor: a transformers.js tokenizer built from the tokenizer.json /
// tokenizer_config.json objects we already hold (no fetch), the model's own chat template, and
// per-token byte lengths so build_inputs.ts can map rendered-text offsets to token positions
// (the tokenizers library returns no offsets).
//
// transformers.js is imported dynamically and only here: its bundle pulls onnxruntime-web,
// which must stay out of the app's main chunk (TESTING.md). Everything after `loadTokenizer`
// is synchronous.
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { IMAGE_PLACEHOLDER, type Turn } from '../../lib/dataset/schema';
import { SMOLVLM_CHAT_TEMPLATE } from './chat_template';

/** One message in the shape SmolVLM's template reads: a list of text / image parts. */
interface TemplateMessage {
  role: string;
  content: ({ type: 'text'; text: string } | { type: 'image' })[];
}

/**
 * `<image>` placeholders in a turn's text become image parts, the rest text parts, in order.
 * SmolVLM's template prints `Role:` without a space when the first part is an image.
 */
export function turnToMessage(turn: Turn): TemplateMessage {
  const content: TemplateMessage['content'] = [];
  const pieces = turn.text.split(IMAGE_PLACEHOLDER);
  pieces.forEach((piece, i) => {
    if (i > 0) content.push({ type: 'image' });
    if (piece !== '') content.push({ type: 'text', text: piece });
  });
  // The template indexes content[0]; an empty turn still needs one part.
  if (content.length === 0) content.push({ type: 'text', text: '' });
  return { role: turn.role, content };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** True when the tokenizer maps every byte of text to vocabulary characters one to one (GPT-2 style). */
function isByteLevel(tokenizerJson: Record<string, unknown>): boolean {
  const pre = tokenizerJson.pre_tokenizer;
  const hasByteLevel = (p: unknown): boolean =>
    isObject(p) &&
    ((p.type === 'ByteLevel' && p.add_prefix_space !== true) ||
      (p.type === 'Sequence' && Array.isArray(p.pretokenizers) && p.pretokenizers.some(hasByteLevel)));
  return hasByteLevel(pre) && (tokenizerJson.normalizer === null || tokenizerJson.normalizer === undefined);
}

const utf8 = new TextEncoder();

/** UTF-8 byte length of a string. */
export function byteLength(s: string): number {
  return utf8.encode(s).length;
}

export class TextTokenizer {
  readonly vocabSize: number;
  readonly chatTemplate: string;
  /** bos/eos/pad as the tokenizer config names them; null when the config has none. */
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly eosToken: string | null;
  /** (V) bytes of rendered text each token id stands for; -1 when unknown (not byte-level). */
  private readonly tokenBytes: Int32Array;
  private readonly byteLevel: boolean;

  constructor(
    private readonly tok: PreTrainedTokenizer,
    tokenizerJson: Record<string, unknown>,
    chatTemplate: string,
  ) {
    this.chatTemplate = chatTemplate;
    this.bosId = tok.bos_token_id ?? null;
    this.eosId = tok.eos_token_id ?? null;
    this.padId = tok.pad_token_id ?? null;
    this.eosToken = tok.eos_token ?? null;
    const vocab = tok.get_vocab();
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.byteLevel = isByteLevel(tokenizerJson);
    this.tokenBytes = new Int32Array(this.vocabSize).fill(-1);
    const added = new Set<string>();
    if (Array.isArray(tokenizerJson.added_tokens)) {
      for (const a of tokenizerJson.added_tokens) if (isObject(a) && typeof a.content === 'string') added.add(a.content);
    }
    for (const [token, id] of vocab) {
      // Added tokens are matched as literal text; byte-level BPE tokens are one character per byte.
      this.tokenBytes[id] = added.has(token) ? byteLength(token) : this.byteLevel ? token.length : -1;
    }
  }

  /** Id of a token given as its exact string; throws naming the token when the vocabulary lacks it. */
  tokenId(token: string): number {
    const id = this.tok.convert_tokens_to_ids(token) as number | undefined | null;
    if (id === undefined || id === null) throw new Error(`tokenizer: the vocabulary has no token ${JSON.stringify(token)}`);
    return id;
  }

  /** Token ids of `text`; special-token strings in it become their single ids. No bos is added. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false });
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** Render turns through the model's own chat template (text, not ids). */
  applyChatTemplate(turns: readonly Turn[], opts: { addGenerationPrompt: boolean }): string {
    return this.tok.apply_chat_template(turns.map(turnToMessage), {
      chat_template: this.chatTemplate,
      add_generation_prompt: opts.addGenerationPrompt,
      tokenize: false,
    }) as string;
  }

  /**
   * (T+1) byte offset where each token of `ids` starts in the text it was encoded from, plus the
   * end. Throws when the tokenizer is not byte-level or the lengths do not add up to `text`,
   * because then positions cannot be trusted for loss masking.
   */
  byteOffsets(ids: readonly number[], text: string): Int32Array {
    const out = new Int32Array(ids.length + 1);
    for (let t = 0; t < ids.length; t++) {
      const n = this.tokenBytes[ids[t]];
      if (n === undefined || n < 0) {
        throw new Error(
          `tokenizer: cannot locate token ${ids[t]} in the text (tokenizer.json is not a plain byte-level BPE), so assistant tokens cannot be found for loss masking`,
        );
      }
      out[t + 1] = out[t] + n;
    }
    const total = byteLength(text);
    if (out[ids.length] !== total) {
      throw new Error(
        `tokenizer: token lengths add up to ${out[ids.length]} bytes but the text has ${total}; tokenizer.json normalises or strips text, so loss masking cannot map text to tokens`,
      );
    }
    return out;
  }
}

/**
 * Build the tokenizer from parsed JSON (no network). `chatTemplate` overrides the one in
 * tokenizer_config.json (SmolVLM repos also ship chat_template.json); without either, SmolVLM's.
 */
export async function loadTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown,
  chatTemplate?: string,
): Promise<TextTokenizer> {
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
    throw new Error('tokenizer.json: expected an object with a "model" field (a Hugging Face tokenizers file)');
  }
  if (!isObject(tokenizerConfig)) throw new Error('tokenizer_config.json: expected a JSON object');
  const { PreTrainedTokenizer } = await import('@huggingface/transformers');
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new Error(`tokenizer.json: could not build the tokenizer: ${(e as Error).message}`);
  }
  const fromConfig = typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : undefined;
  return new TextTokenizer(tok, tokenizerJson, chatTemplate ?? fromConfig ?? SMOLVLM_CHAT_TEMPLATE);
}
