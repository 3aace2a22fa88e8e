// Idefics3 prompt expansion: what one `<image>` placeholder becomes once the image processor has
// decided how the image is tiled. Written after transformers' processing_idefics3.py
// (_prompt_split_image / _prompt_single_image / get_image_prompt_string):
// https://github.com/huggingface/transformers/blob/main/src/transformers/models/idefics3/processing_idefics3.py
//
// Split image (rows x cols tiles), tiles row-major, a newline after each row, then the global view:
//   <fake><row_1_col_1><image>*L <fake><row_1_col_2><image>*L \n ... \n \n<fake><global-img><image>*L<fake>
// Unsplit image (rows = cols = 0): <fake><global-img><image>*L<fake>
// L = image_seq_len, the image tokens the connector emits per tile.

export interface ImagePromptTokens {
  fakeTokenAroundImage: string;
  imageToken: string;
  globalImageToken: string;
}

export const IDEFICS3_PROMPT_TOKENS: ImagePromptTokens = {
  fakeTokenAroundImage: '<fake_token_around_image>',
  imageToken: '<image>',
  globalImageToken: '<global-img>',
};

/** The text one image placeholder expands to; rows = cols = 0 means the image was not split. */
export function imagePromptString(
  rows: number,
  cols: number,
  imageSeqLen: number,
  tokens: ImagePromptTokens = IDEFICS3_PROMPT_TOKENS,
): string {
  const { fakeTokenAroundImage: fake, imageToken: img, globalImageToken: global } = tokens;
  const tileImageTokens = img.repeat(imageSeqLen);
  const globalView = `${fake}${global}${tileImageTokens}${fake}`;
  if (rows === 0 && cols === 0) return globalView;
  if (rows <= 0 || cols <= 0) throw new Error(`image prompt: a split image needs rows and cols >= 1, got ${rows}x${cols}`);
  let s = '';
  for (let r = 1; r <= rows; r++) {
    for (let c = 1; c <= cols; c++) s += `${fake}<row_${r}_col_${c}>${tileImageTokens}`;
    s += '\n';
  }
  return s + '\n' + globalView;
}

/** Tiles (vision encoder inputs) an image with this grid contributes: the tiles plus the global view. */
export function tilesForGrid(rows: number, cols: number): number {
  return rows === 0 && cols === 0 ? 1 : rows * cols + 1;
}
