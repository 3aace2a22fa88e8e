// CSV import: one row per sample, with an image file name, a question and an answer.
// The reader follows RFC 4180: fields may be quoted, quoted fields may hold the delimiter,
// line breaks and doubled quotes (""). The delimiter is a comma, or a tab / semicolon when
// the header holds none of the others. Line numbers in messages are the row's first line.

import { IMAGE_PLACEHOLDER, type Turn } from '../schema';
import type { Draft } from './draft';
import type { ImportIssue } from './types';

export interface CsvRow {
  cells: string[];
  /** 1-based line where the row starts. */
  line: number;
}

export interface CsvParse {
  rows: CsvRow[];
  /** Set when the text ends inside a quoted field; rows before it are still returned. */
  error?: { line: number; reason: string };
}

function pickDelimiter(text: string): string {
  const firstLine = text.slice(0, text.search(/\r?\n|$/));
  if (firstLine.includes(',')) return ',';
  if (firstLine.includes('\t')) return '\t';
  if (firstLine.includes(';')) return ';';
  return ',';
}

export function parseCsv(input: string, delimiter?: string): CsvParse {
  const text = input.replace(/^\uFEFF/, '');
  const d = delimiter ?? pickDelimiter(text);
  const rows: CsvRow[] = [];
  let cells: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  let i = 0;
  let quoted = false; // Inside a quoted field.
  let quoteLine = 0;
  const endRow = () => {
    cells.push(field);
    // A blank line is no row at all.
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ cells, line: rowLine });
    cells = [];
    field = '';
  };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      quoteLine = line;
      i++;
    } else if (c === d) {
      cells.push(field);
      field = '';
      i++;
    } else if (c === '\r' || c === '\n') {
      endRow();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      rowLine = line;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) return { rows, error: { line: quoteLine, reason: `quoted field opened on line ${quoteLine} is never closed` } };
  if (field !== '' || cells.length > 0) endRow();
  return { rows };
}

const HEADER_NAMES: Record<string, string[]> = {
  image: ['image', 'images', 'image_file', 'image_path', 'image_name', 'file', 'filename', 'file_name', 'path'],
  question: ['question', 'prompt', 'query', 'instruction', 'q'],
  answer: ['answer', 'response', 'output', 'label', 'a'],
  system: ['system'],
  split: ['split'],
  kind: ['kind'],
  stage: ['stage'],
  tags: ['tags', 'tag'],
  id: ['id'],
};

/** Several images in one cell are separated by ';' or '|'. */
export function splitList(cell: string): string[] {
  return cell
    .split(/[;|]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** CSV text -> drafts (one per data row) and issues for rows that cannot become samples. */
export function csvToDrafts(text: string, file: string, issues: ImportIssue[]): { drafts: Draft[]; skipped: number } {
  const { rows, error } = parseCsv(text);
  let skipped = 0;
  if (error) {
    issues.push({ file, line: error.line, reason: `${error.reason}; the rows after it were not imported` });
    skipped++;
  }
  if (rows.length === 0) {
    issues.push({ file, reason: 'CSV file has no header row' });
    return { drafts: [], skipped: skipped + 1 };
  }
  const header = rows[0].cells.map((h) => h.trim().toLowerCase());
  const col: Record<string, number> = {};
  for (const [key, names] of Object.entries(HEADER_NAMES)) {
    const idx = header.findIndex((h) => names.includes(h));
    if (idx >= 0) col[key] = idx;
  }
  if (col.image === undefined) {
    issues.push({
      file,
      line: rows[0].line,
      reason: `CSV header has no image column (expected one of: ${HEADER_NAMES.image.join(', ')}); found: ${rows[0].cells.join(', ')}`,
    });
    return { drafts: [], skipped: skipped + rows.length - 1 };
  }
  const drafts: Draft[] = [];
  for (const row of rows.slice(1)) {
    const get = (k: string) => (col[k] === undefined ? undefined : (row.cells[col[k]] ?? ''));
    if (row.cells.length > header.length) {
      issues.push({
        file,
        line: row.line,
        reason: `row has ${row.cells.length} fields but the header has ${header.length} (an unquoted comma?); row skipped`,
      });
      skipped++;
      continue;
    }
    const images = splitList(get('image') ?? '');
    if (images.length === 0) {
      issues.push({ file, line: row.line, reason: 'no image file name in the image column; row skipped' });
      skipped++;
      continue;
    }
    const question = get('question') ?? '';
    const answer = get('answer') ?? '';
    const system = get('system') ?? '';
    // A CSV question names no placeholder: the images come first, as LLaMA-Factory writes them.
    const userText = question.includes(IMAGE_PLACEHOLDER) ? question : IMAGE_PLACEHOLDER.repeat(images.length) + question;
    const turns: Turn[] = [];
    if (system.trim() !== '') turns.push({ role: 'system', text: system });
    turns.push({ role: 'user', text: userText });
    if (answer.trim() !== '') turns.push({ role: 'assistant', text: answer });
    drafts.push({
      turns,
      imagePaths: images,
      meta: { split: get('split'), kind: get('kind'), stage: get('stage'), tags: get('tags'), id: get('id') },
      file,
      line: row.line,
      where: `line ${row.line}`,
      source: `${file}:${row.line}`,
    });
  }
  return { drafts, skipped };
}
