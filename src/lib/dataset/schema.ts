// The dataset's data model. Versioned: every stored record carries `v`, and
// `migrateSample` / `migrateProject` (in migrate.ts) lift older records to the current shape
// when they are read. Later issues add fields (preference pairs, PPL, run results); adding
// an optional field needs no migration, changing a field's meaning does.

export const DATASET_SCHEMA_VERSION = 1;

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

/** Business data is the task itself; general data protects general ability (playbook §5). */
export type DataKind = 'business' | 'general_caption' | 'general_instruction';
export const DATA_KINDS: readonly DataKind[] = ['business', 'general_caption', 'general_instruction'];

export type AnswerFormat =
  | { type: 'free_text' }
  | { type: 'json'; fields: string[] }
  | { type: 'multiple_choice'; choices: string[] };

export interface Project {
  v: number;
  id: string;
  name: string;
  taskDescription: string;
  /** Prompt template for the prompt baseline; `{question}` is replaced by the sample's question. */
  defaultPrompt: string;
  answerFormat: AnswerFormat;
  /** Target business:general ratio, e.g. 10 means 10:1 (playbook §2, §5). */
  targetBusinessToGeneral: number;
  createdAt: number;
  updatedAt: number;
}

/** One image of a sample. The bytes live in their own record keyed by `hash`. */
export interface ImageRef {
  /** SHA-256 of the image bytes, hex. Same bytes -> same hash -> stored once. */
  hash: string;
  /** MIME type, e.g. image/png. */
  type: string;
  width: number;
  height: number;
  /** Byte size of the blob. */
  size: number;
  /** File name it came from, for messages and export. */
  name: string;
}

export type Role = 'system' | 'user' | 'assistant';

/** One conversation turn. `<image>` placeholders in `text` refer to the sample's images in order. */
export interface Turn {
  role: Role;
  text: string;
}

/** Reserved for the DPO issue: a user-picked pair of answers to the last user turn. */
export interface PreferencePair {
  chosen: string;
  rejected: string;
  createdAt: number;
}

export interface Sample {
  v: number;
  id: string;
  projectId: string;
  /** Images in the order of the `<image>` placeholders across the turns. One image may appear twice. */
  images: ImageRef[];
  /** Optional system text first, then alternating user/assistant turns. */
  turns: Turn[];
  split: Split;
  kind: DataKind;
  /** Training stage, 1 = bulk, 2 = high quality, ... (playbook §6). */
  stage: number;
  tags: string[];
  /** Where it came from: file name and line, "manual", "augment:mc", ... */
  source: string;
  createdAt: number;
  updatedAt: number;
  preference?: PreferencePair;
}

export const IMAGE_PLACEHOLDER = '<image>';

/** A sample is labelled when it has at least one assistant turn with non-blank text. */
export function isLabelled(s: Pick<Sample, 'turns'>): boolean {
  return s.turns.some((t) => t.role === 'assistant' && t.text.trim() !== '');
}

/** Number of `<image>` placeholders across all turns. */
export function countPlaceholders(turns: readonly Turn[]): number {
  let n = 0;
  for (const t of turns) n += t.text.split(IMAGE_PLACEHOLDER).length - 1;
  return n;
}

/** A fresh project with the app's defaults (free-text answers, 10:1 business:general). */
export function defaultProject(id: string, now: number): Project {
  return {
    v: DATASET_SCHEMA_VERSION,
    id,
    name: 'My project',
    taskDescription: '',
    defaultPrompt: '{question}',
    answerFormat: { type: 'free_text' },
    targetBusinessToGeneral: 10,
    createdAt: now,
    updatedAt: now,
  };
}
