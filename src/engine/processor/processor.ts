// The processor of one loaded model: tokenizer + chat template + image preprocessing settings +
// image_seq_len + the special token ids, checked against the model config once at load time so a
// mismatched folder fails here with the file and field named, not later as garbage tokens.
// build_inputs.ts turns samples into ModelInputs with it.
import { imageSeqLen, type VlmConfig } from '../config';
import type { Turn } from '../../lib/dataset/schema';
import { parseImageProcessorConfig, type Idefics3ImageConfig } from './image_processor';
import { IDEFICS3_PROMPT_TOKENS, imagePromptString } from './prompt';
import { loadTokenizer, type TextTokenizer } from './tokenizer';

/** Parsed JSON of the model folder's processor files. */
export interface ProcessorFiles {
  tokenizerJson: unknown;
  tokenizerConfig: unknown;
  preprocessorConfig: unknown;
  /** processor_config.json; may be absent (image_seq_len then follows the model config). */
  processorConfig?: unknown;
  /** chat_template.json's template or a .jinja file's text; overrides tokenizer_config.json's. */
  chatTemplate?: string;
}

export interface SpecialIds {
  image: number;
  fakeTokenAroundImage: number;
  globalImg: number;
  endOfUtterance: number;
  bos: number | null;
  eos: number | null;
  pad: number | null;
}

export class Processor {
  private readonly promptIdCache = new Map<string, number[]>();

  constructor(
    readonly tokenizer: TextTokenizer,
    readonly imageConfig: Idefics3ImageConfig,
    /** Image tokens per tile (64 for SmolVLM-256M). */
    readonly imageSeqLen: number,
    readonly special: SpecialIds,
  ) {}

  encode(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, opts);
  }

  applyChatTemplate(turns: readonly Turn[], opts: { addGenerationPrompt: boolean }): string {
    return this.tokenizer.applyChatTemplate(turns, opts);
  }

  /** Token ids one `<image>` placeholder expands to for a rows x cols grid (0 x 0 = unsplit). */
  imagePromptIds(rows: number, cols: number): number[] {
    const key = `${rows}x${cols}`;
    let ids = this.promptIdCache.get(key);
    if (!ids) {
      ids = this.tokenizer.encode(imagePromptString(rows, cols, this.imageSeqLen));
      this.promptIdCache.set(key, ids);
    }
    return ids;
  }
}

/** Build the processor from the model folder's parsed files and check it agrees with `config`. */
export async function createProcessor(files: ProcessorFiles, config: VlmConfig): Promise<Processor> {
  const tokenizer = await loadTokenizer(files.tokenizerJson, files.tokenizerConfig, files.chatTemplate);
  const imageConfig = parseImageProcessorConfig(files.preprocessorConfig);

  const expectedSeqLen = imageSeqLen(config);
  let seqLen = expectedSeqLen;
  if (files.processorConfig !== undefined) {
    const pc = files.processorConfig as Record<string, unknown> | null;
    if (typeof pc !== 'object' || pc === null) throw new Error('processor_config.json: expected a JSON object');
    if (pc.image_seq_len !== undefined) {
      if (!Number.isInteger(pc.image_seq_len)) throw new Error(`processor_config.json: field "image_seq_len" must be an integer, got ${JSON.stringify(pc.image_seq_len)}`);
      seqLen = pc.image_seq_len as number;
    }
  }
  if (seqLen !== expectedSeqLen) {
    throw new Error(
      `processor_config.json: field "image_seq_len" is ${seqLen} but config.json gives (${config.vit_img_size}/${config.vit_patch_size})^2 / ${config.mp_pixel_shuffle_factor}^2 = ${expectedSeqLen} image tokens per tile`,
    );
  }
  if (imageConfig.maxImageSize !== config.vit_img_size) {
    throw new Error(
      `preprocessor_config.json: field "max_image_size.longest_edge" is ${imageConfig.maxImageSize} but the vision tower takes ${config.vit_img_size} px images (config.json vision_config.image_size)`,
    );
  }

  const special: SpecialIds = {
    image: tokenizer.tokenId(IDEFICS3_PROMPT_TOKENS.imageToken),
    fakeTokenAroundImage: tokenizer.tokenId(IDEFICS3_PROMPT_TOKENS.fakeTokenAroundImage),
    globalImg: tokenizer.tokenId(IDEFICS3_PROMPT_TOKENS.globalImageToken),
    endOfUtterance: tokenizer.tokenId('<end_of_utterance>'),
    bos: tokenizer.bosId,
    eos: tokenizer.eosId,
    pad: tokenizer.padId,
  };
  if (special.image !== config.image_token_id) {
    throw new Error(`config.json: field "image_token_id" is ${config.image_token_id} but tokenizer.json gives <image> the id ${special.image}`);
  }
  if (tokenizer.vocabSize > config.lm_vocab_size) {
    throw new Error(
      `tokenizer.json: ids go up to ${tokenizer.vocabSize - 1} but config.json text_config.vocab_size is ${config.lm_vocab_size}; the embedding table has no rows for them`,
    );
  }
  return new Processor(tokenizer, imageConfig, seqLen, special);
}
