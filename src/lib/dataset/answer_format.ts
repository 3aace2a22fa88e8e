// Checks an answer (a label, or later a model output) against the project's answer format,
// with messages a user can act on: where the JSON breaks, which declared fields are missing,
// which extra fields are there, which choices are allowed.

import type { AnswerFormat } from './schema';
import { describeJsonError } from './json_error';

export interface AnswerCheck {
  ok: boolean;
  errors: string[];
}

function validateJson(text: string, fields: readonly string[]): string[] {
  const t = text.trim();
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch (e) {
    const hint = t.startsWith('```') ? ' (remove the ``` code fence: the answer must be bare JSON)' : '';
    return [`not valid JSON: ${describeJsonError(t, e).message}${hint}`];
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [`expected a JSON object with fields ${fields.join(', ')}, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`];
  }
  const errors: string[] = [];
  const keys = Object.keys(value);
  const missing = fields.filter((f) => !keys.includes(f));
  const extra = keys.filter((k) => !fields.includes(k));
  if (missing.length > 0) errors.push(`missing field${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  if (extra.length > 0) errors.push(`unknown extra field${extra.length > 1 ? 's' : ''}: ${extra.join(', ')} (declared: ${fields.join(', ') || 'none'})`);
  return errors;
}

function validateChoice(text: string, choices: readonly string[]): string[] {
  const t = text.trim();
  if (choices.includes(t)) return [];
  const near = choices.find((c) => c.toLowerCase() === t.toLowerCase());
  const hint = near !== undefined ? ` (did you mean "${near}"? choices are case-sensitive)` : '';
  return [`"${t}" is not one of the choices: ${choices.map((c) => `"${c}"`).join(', ')}${hint}`];
}

export function validateAnswer(text: string, format: AnswerFormat): AnswerCheck {
  if (text.trim() === '') return { ok: false, errors: ['answer is empty'] };
  const errors =
    format.type === 'json' ? validateJson(text, format.fields) : format.type === 'multiple_choice' ? validateChoice(text, format.choices) : [];
  return { ok: errors.length === 0, errors };
}
