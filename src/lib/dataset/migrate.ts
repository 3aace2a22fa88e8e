// Lifts stored records written by older versions of the app to the current schema
// (DATASET_SCHEMA_VERSION). Records are migrated when read, not rewritten in bulk: an old
// record stays valid on disk until it is next saved.
//
// Version history
//   v0 (pre-release prototype, no `v` field): one image and one question/answer pair per
//      sample: `{ id, image, question, answer?, split?, tags?, source?, createdAt? }`;
//      projects had `{ id, name, prompt? }`.
//   v1: conversations (`turns`) over any number of `images`, plus kind and stage.

import {
  DATASET_SCHEMA_VERSION,
  DATA_KINDS,
  IMAGE_PLACEHOLDER,
  SPLITS,
  defaultProject,
  type DataKind,
  type ImageRef,
  type Project,
  type Sample,
  type Split,
  type Turn,
} from './schema';

/** The v0 sample shape, kept only to migrate from it. */
export interface SampleV0 {
  v?: 0;
  id: string;
  projectId?: string;
  image: ImageRef;
  question: string;
  answer?: string;
  split?: Split;
  tags?: string[];
  source?: string;
  createdAt?: number;
  updatedAt?: number;
}

/** The v0 project shape. */
export interface ProjectV0 {
  v?: 0;
  id: string;
  name?: string;
  prompt?: string;
  createdAt?: number;
  updatedAt?: number;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function versionOf(rec: Record<string, unknown>, what: string): number {
  const v = rec.v ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new MigrationError(`${what} ${String(rec.id)}: field "v" must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (v > DATASET_SCHEMA_VERSION) {
    throw new MigrationError(
      `${what} ${String(rec.id)} was written by a newer version of the app (schema v${v}, this app knows v${DATASET_SCHEMA_VERSION}); update the app to read it`,
    );
  }
  return v;
}

function sampleV0toV1(s: SampleV0): Sample {
  if (typeof s.id !== 'string' || !isObject(s.image) || typeof s.question !== 'string') {
    throw new MigrationError(`sample ${String(s.id)} (v0): needs string "id", object "image" and string "question"`);
  }
  // v0 questions had no placeholder: the single image always came first.
  const question = s.question.includes(IMAGE_PLACEHOLDER) ? s.question : IMAGE_PLACEHOLDER + s.question;
  const turns: Turn[] = [{ role: 'user', text: question }];
  if (typeof s.answer === 'string' && s.answer.trim() !== '') turns.push({ role: 'assistant', text: s.answer });
  const created = typeof s.createdAt === 'number' ? s.createdAt : 0;
  return {
    v: 1,
    id: s.id,
    projectId: s.projectId ?? '',
    images: [s.image],
    turns,
    split: s.split && SPLITS.includes(s.split) ? s.split : 'train',
    kind: 'business',
    stage: 1,
    tags: Array.isArray(s.tags) ? s.tags.filter((t) => typeof t === 'string') : [],
    source: s.source ?? 'migrated from v0',
    createdAt: created,
    updatedAt: typeof s.updatedAt === 'number' ? s.updatedAt : created,
  };
}

/** Any stored sample record -> current Sample. Throws MigrationError naming the record and the reason. */
export function migrateSample(raw: unknown): Sample {
  if (!isObject(raw)) throw new MigrationError(`sample record is not an object: ${JSON.stringify(raw)?.slice(0, 80)}`);
  let v = versionOf(raw, 'sample');
  let rec: unknown = raw;
  if (v === 0) {
    rec = sampleV0toV1(raw as unknown as SampleV0);
    v = 1;
  }
  const s = rec as Sample;
  if (!Array.isArray(s.images) || !Array.isArray(s.turns)) {
    throw new MigrationError(`sample ${String(s.id)}: v${v} record lacks "images" or "turns"`);
  }
  if (!DATA_KINDS.includes(s.kind as DataKind)) throw new MigrationError(`sample ${s.id}: unknown kind ${JSON.stringify(s.kind)}`);
  return s;
}

/** Any stored project record -> current Project. */
export function migrateProject(raw: unknown): Project {
  if (!isObject(raw)) throw new MigrationError(`project record is not an object: ${JSON.stringify(raw)?.slice(0, 80)}`);
  const v = versionOf(raw, 'project');
  if (v === 0) {
    const p = raw as unknown as ProjectV0;
    if (typeof p.id !== 'string') throw new MigrationError('project (v0): needs a string "id"');
    const base = defaultProject(p.id, typeof p.createdAt === 'number' ? p.createdAt : 0);
    return {
      ...base,
      name: p.name ?? base.name,
      defaultPrompt: p.prompt ?? base.defaultPrompt,
      updatedAt: typeof p.updatedAt === 'number' ? p.updatedAt : base.updatedAt,
    };
  }
  return raw as unknown as Project;
}
