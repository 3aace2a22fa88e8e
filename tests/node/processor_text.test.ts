// Tokenizer fixture, chat template and Idefics3 prompt expansion.
import { describe, expect, it } from 'vitest';
import { makeTinyTokenizerFiles, TINY_PROCESSOR } from '../../scripts/fixtures/tokenizer';
import { loadTokenizer } from '../../src/engine/processor/tokenizer';
import { imagePromptString, tilesForGrid } from '../../src/engine/processor/prompt';

const fx = makeTinyTokenizerFiles();
const load = () => loadTokenizer(JSON.parse(fx.files['tokenizer.json']), JSON.parse(fx.files['tokenizer_config.json']));

describe('tiny tokenizer fixture', () => {
  it('is deterministic and its special ids match the tokenizer', async () => {
    expect(makeTinyTokenizerFiles()).toEqual(fx);
    const tok = await load();
    expect(tok.vocabSize).toBe(fx.vocabSize);
    expect(tok.tokenId('<image>')).toBe(fx.specialIds.image);
    expect(tok.tokenId('<fake_token_around_image>')).toBe(fx.specialIds.fakeTokenAroundImage);
    expect(tok.tokenId('<global-img>')).toBe(fx.specialIds.globalImg);
    expect(tok.tokenId('<end_of_utterance>')).toBe(fx.specialIds.endOfUtterance);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([fx.specialIds.bos, fx.specialIds.eos, fx.specialIds.pad]);
    expect(tok.tokenId('<row_6_col_6>')).toBe(fx.vocabSize - 1);
    const pc = JSON.parse(fx.files['processor_config.json']);
    expect(pc.image_seq_len).toBe((TINY_PROCESSOR.imageSize / TINY_PROCESSOR.patchSize) ** 2 / TINY_PROCESSOR.scaleFactor ** 2);
  });

  it('round-trips arbitrary text, uses merges, and keeps special tokens whole', async () => {
    const tok = await load();
    const text = 'The answer is 42, café ✓ <image>\nnew line';
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    expect(ids.filter((i) => i === fx.specialIds.image)).toHaveLength(1);
    // " the" is learned from the corpus, so it is one token rather than four bytes.
    expect(tok.encode(' the')).toHaveLength(1);
    expect(tok.encode('42')).toHaveLength(2); // digits split individually
    const offsets = tok.byteOffsets(ids, text);
    expect(offsets[ids.length]).toBe(new TextEncoder().encode(text).length);
  });
});

describe('chat template (SmolVLM, through transformers.js)', () => {
  it('renders a user turn with an image and the generation prompt', async () => {
    const tok = await load();
    const s = tok.applyChatTemplate([{ role: 'user', text: '<image>What is this?' }], { addGenerationPrompt: true });
    expect(s).toBe('<|im_start|>User:<image>What is this?<end_of_utterance>\nAssistant:');
  });

  it('renders system, user and assistant turns', async () => {
    const tok = await load();
    const s = tok.applyChatTemplate(
      [
        { role: 'system', text: 'You are terse.' },
        { role: 'user', text: 'Describe <image> please' },
        { role: 'assistant', text: 'A cat.' },
      ],
      { addGenerationPrompt: false },
    );
    expect(s).toBe(
      '<|im_start|>System: You are terse.<end_of_utterance>\nUser: Describe <image> please<end_of_utterance>\nAssistant: A cat.<end_of_utterance>\n',
    );
  });
});

describe('Idefics3 prompt expansion', () => {
  it('unsplit image: fake, global, L image tokens, fake', () => {
    expect(imagePromptString(0, 0, 2)).toBe('<fake_token_around_image><global-img><image><image><fake_token_around_image>');
  });

  it('1x2 grid, written out by hand', () => {
    expect(imagePromptString(1, 2, 1)).toBe(
      '<fake_token_around_image><row_1_col_1><image><fake_token_around_image><row_1_col_2><image>\n' +
        '\n<fake_token_around_image><global-img><image><fake_token_around_image>',
    );
  });

  it('SmolVLM-256M: 64 image tokens per tile, row/col markers per tile', () => {
    const count = (s: string, sub: string) => s.split(sub).length - 1;
    expect(count(imagePromptString(0, 0, 64), '<image>')).toBe(64);
    const s = imagePromptString(2, 3, 64);
    expect(count(s, '<image>')).toBe(64 * tilesForGrid(2, 3));
    expect(tilesForGrid(2, 3)).toBe(7);
    for (let r = 1; r <= 2; r++) for (let c = 1; c <= 3; c++) expect(count(s, `<row_${r}_col_${c}>`)).toBe(1);
    expect(count(s, '<row_3_col_1>')).toBe(0);
    expect(count(s, '<fake_token_around_image>')).toBe(6 + 2);
    expect(count(s, '\n')).toBe(2 + 1);
    expect(() => imagePromptString(0, 2, 64)).toThrow(/rows and cols/);
  });
});
