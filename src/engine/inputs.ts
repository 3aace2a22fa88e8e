// What one sample becomes before it meets the model. ONE function (`buildModelInputs` in
// processor/) produces this for generation, evaluation and training alike.
// T tokens, N image tiles, H = W = vit_img_size.

export interface ModelInputs {
  /** (T) token ids, image placeholders already expanded to image_seq_len image tokens per tile. */
  inputIds: Int32Array;
  /** (N, 3, H, W) normalised pixels, tiles in the order their image tokens appear. */
  pixelValues: Float32Array;
  nTiles: number;
  /**
   * (T) next-token targets for training and per-sample loss: labels[t] is the id expected at
   * position t (HF convention, shifted inside the loss), -100 where masked (user text, image
   * tokens, role markers, padding). Absent for generation prompts.
   */
  labels?: Int32Array;
}
