// JSON / JSONL records -> drafts. Three record layouts are understood:
//  - LLaMA-Factory "sharegpt": a list of messages under `messages` or `conversations`, each
//    {role, content} or {from, value}; `images` is a list of paths; one `<image>` per image.
//  - Hugging Face "messages with content parts": content is a list of parts
//    [{type:"image"}, {type:"text", text}]; image parts become `<image>` placeholders and the
//    paths come from the `images` column (or from the parts themselves).
//  - LLaMA-Factory "alpaca": instruction / input / output (+ system, images).
// A dataset_info.json entry can rename the columns and tags (see DatasetFormat).
// Reference for the layouts: LLaMA-Factory data/README.md and src/llamafactory/data/converter.py.

import { IMAGE_PLACEHOLDER, type Role, type Turn } from '../schema';
import { describeJsonError } from '../json_error';
import type { Draft } from './draft';
import type { ImportIssue } from './types';

/** The parts of a LLaMA-Factory dataset_info.json entry that shape how records are read. */
export interface DatasetFormat {
  formatting?: string;
  columns?: Partial<Record<'messages' | 'images' | 'system' | 'prompt' | 'query' | 'response', string>>;
  tags?: Partial<Record<'role_tag' | 'content_tag' | 'user_tag' | 'assistant_tag' | 'system_tag', string>>;
}

const DEFAULT_ROLES: Record<string, Role> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

function roleMap(fmt: DatasetFormat): Record<string, Role> {
  const m = { ...DEFAULT_ROLES };
  if (fmt.tags?.user_tag) m[fmt.tags.user_tag] = 'user';
  if (fmt.tags?.assistant_tag) m[fmt.tags.assistant_tag] = 'assistant';
  if (fmt.tags?.system_tag) m[fmt.tags.system_tag] = 'system';
  return m;
}

/** An image given inline in a content part, if it names a path. */
function partPath(part: Obj): string | undefined {
  for (const k of ['image', 'path', 'url']) if (typeof part[k] === 'string') return part[k] as string;
  const iu = part.image_url;
  if (isObj(iu) && typeof iu.url === 'string') return iu.url;
  if (typeof iu === 'string') return iu;
  return undefined;
}

/** A message's content -> text with `<image>` placeholders. Throws a message on bad shapes. */
function contentText(content: unknown, turn: number, partImages: string[]): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw new Error(`turn ${turn}: content must be text or a list of parts, got ${typeof content}`);
  let text = '';
  content.forEach((part, k) => {
    if (typeof part === 'string') {
      text += part;
      return;
    }
    if (!isObj(part)) throw new Error(`turn ${turn}, part ${k + 1}: not an object`);
    const type = part.type;
    if (type === 'text') {
      if (typeof part.text !== 'string') throw new Error(`turn ${turn}, part ${k + 1}: text part without a "text" string`);
      text += part.text;
    } else if (type === 'image' || type === 'image_url') {
      text += IMAGE_PLACEHOLDER;
      const p = partPath(part);
      if (p !== undefined) partImages.push(p);
    } else {
      throw new Error(`turn ${turn}, part ${k + 1}: unsupported content part type ${JSON.stringify(type)} (expected "text" or "image")`);
    }
  });
  return text;
}

function imageList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const xs = Array.isArray(v) ? v : [v];
  return xs.map((x, i) => {
    if (typeof x === 'string') return x;
    if (isObj(x) && typeof x.path === 'string') return x.path;
    throw new Error(`images[${i}] is not a file path (embedded image bytes are not supported; export the images as files)`);
  });
}

/** Checks turn order: optional system first, then user/assistant alternating from a user turn. */
function checkOrder(turns: Turn[]): void {
  const body = turns[0]?.role === 'system' ? turns.slice(1) : turns;
  const offset = turns.length - body.length;
  if (!body.some((t) => t.role === 'user')) throw new Error('empty conversation: no user turn');
  body.forEach((t, i) => {
    const want: Role = i % 2 === 0 ? 'user' : 'assistant';
    if (t.role !== want) {
      throw new Error(
        `turn ${i + offset + 1} is a "${t.role}" turn where a "${want}" turn was expected (after an optional system turn, turns must alternate user, assistant, ...)`,
      );
    }
  });
}

/** One record -> turns and image paths. Throws an Error whose message is the reason to report. */
export function recordToTurns(rec: unknown, fmt: DatasetFormat = {}): { turns: Turn[]; imagePaths: string[] } {
  if (!isObj(rec)) throw new Error(`record is not a JSON object (got ${Array.isArray(rec) ? 'an array' : typeof rec})`);
  const cols = fmt.columns ?? {};
  const imagesCol = cols.images ?? (rec.images !== undefined ? 'images' : 'image');
  const partImages: string[] = [];
  const turns: Turn[] = [];
  const systemCol = cols.system ?? 'system';
  const systemText = typeof rec[systemCol] === 'string' ? (rec[systemCol] as string) : '';

  const messagesCol = cols.messages ?? (rec.messages !== undefined ? 'messages' : rec.conversations !== undefined ? 'conversations' : undefined);
  const alpaca = fmt.formatting === 'alpaca' || (messagesCol === undefined && ('instruction' in rec || 'output' in rec));
  if (alpaca) {
    const prompt = rec[cols.prompt ?? 'instruction'];
    const query = rec[cols.query ?? 'input'];
    const response = rec[cols.response ?? 'output'];
    const user = [prompt, query].filter((x) => typeof x === 'string' && x !== '').join('\n');
    if (user.trim() === '' && imageList(rec[imagesCol]).length === 0) throw new Error('empty conversation: no instruction or input');
    if (systemText.trim() !== '') turns.push({ role: 'system', text: systemText });
    turns.push({ role: 'user', text: user });
    if (typeof response === 'string' && response.trim() !== '') turns.push({ role: 'assistant', text: response });
    return { turns, imagePaths: imageList(rec[imagesCol]) };
  }

  if (messagesCol === undefined) {
    throw new Error('no conversation found: expected a "messages" or "conversations" list (or instruction/output fields)');
  }
  const messages = rec[messagesCol];
  if (!Array.isArray(messages)) throw new Error(`"${messagesCol}" must be a list of messages`);
  if (messages.length === 0) throw new Error(`empty conversation: "${messagesCol}" is an empty list`);
  const roles = roleMap(fmt);
  messages.forEach((m, i) => {
    if (!isObj(m)) throw new Error(`turn ${i + 1}: message is not an object`);
    const roleKey = fmt.tags?.role_tag ?? ('role' in m ? 'role' : 'from');
    const contentKey = fmt.tags?.content_tag ?? ('content' in m ? 'content' : 'value');
    const rawRole = m[roleKey];
    const role = typeof rawRole === 'string' ? roles[rawRole] : undefined;
    if (!role) {
      throw new Error(
        `turn ${i + 1}: unknown role ${JSON.stringify(rawRole)} in "${roleKey}" (known: ${Object.keys(roles).join(', ')})`,
      );
    }
    if (role === 'system' && i !== 0) throw new Error(`turn ${i + 1}: a system turn may only come first`);
    turns.push({ role, text: contentText(m[contentKey], i + 1, partImages) });
  });
  if (systemText.trim() !== '' && turns[0].role !== 'system') turns.unshift({ role: 'system', text: systemText });
  // A trailing empty answer means "not labelled yet", not an empty label.
  while (turns.length > 0 && turns[turns.length - 1].role === 'assistant' && turns[turns.length - 1].text.trim() === '') turns.pop();
  checkOrder(turns);
  const listed = imageList(rec[imagesCol]);
  return { turns, imagePaths: listed.length > 0 ? listed : partImages };
}

export interface JsonRecord {
  value: unknown;
  line?: number;
  where: string;
}

function jsonlRecords(text: string, file: string, issues: ImportIssue[]): { records: JsonRecord[]; bad: number } {
  const records: JsonRecord[] = [];
  let bad = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    try {
      records.push({ value: JSON.parse(line), line: i + 1, where: `line ${i + 1}` });
    } catch (e) {
      issues.push({ file, line: i + 1, reason: `not valid JSON: ${describeJsonError(line, e).message}; line skipped` });
      bad++;
    }
  });
  return { records, bad };
}

/**
 * A .json or .jsonl file's text -> its records. A .json file may hold an array, one object, or
 * (misnamed) JSON lines; which one is decided by the content.
 */
export function readJsonRecords(text0: string, file: string, jsonl: boolean, issues: ImportIssue[]): { records: JsonRecord[]; bad: number } {
  const text = text0.replace(/^\uFEFF/, '');
  if (jsonl) return jsonlRecords(text, file, issues);
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v)) return { records: v.map((value, i) => ({ value, where: `record ${i + 1}` })), bad: 0 };
    return { records: [{ value: v, where: 'record 1' }], bad: 0 };
  } catch (e) {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    if (lines.length > 1 && lines.every((l) => l.trimStart().startsWith('{'))) return jsonlRecords(text, file, issues);
    const info = describeJsonError(text, e);
    issues.push({ file, line: info.line, reason: `not valid JSON: ${info.message}; file skipped` });
    return { records: [], bad: 1 };
  }
}

/** A data file's records -> drafts; bad records become issues. */
export function jsonToDrafts(
  text: string,
  file: string,
  jsonl: boolean,
  fmt: DatasetFormat,
  issues: ImportIssue[],
): { drafts: Draft[]; skipped: number } {
  const { records, bad } = readJsonRecords(text, file, jsonl, issues);
  let skipped = bad;
  const drafts: Draft[] = [];
  for (const r of records) {
    try {
      const { turns, imagePaths } = recordToTurns(r.value, fmt);
      const rec = r.value as Obj;
      drafts.push({
        turns,
        imagePaths,
        meta: { split: rec.split, kind: rec.kind, stage: rec.stage, tags: rec.tags, id: rec.id },
        file,
        line: r.line,
        where: r.where,
        source: r.line !== undefined ? `${file}:${r.line}` : `${file}#${r.where.replace('record ', '')}`,
      });
    } catch (e) {
      const where = r.line !== undefined ? '' : `${r.where}: `;
      issues.push({ file, line: r.line, reason: `${where}${(e as Error).message}; skipped` });
      skipped++;
    }
  }
  return { drafts, skipped };
}
