// Keyboard-first labelling: the one table of shortcuts, used both by the key handler and by
// the help line, so the documentation cannot drift from the behaviour.
// Plain keys (j, k, 1, 2, 3, x) are ignored while the focus is in a text field, because
// there they are text; with Alt they work everywhere. Ctrl/Cmd+S and Ctrl/Cmd+Enter always work.
import type { Split } from '../../dataset/schema';

export type ShortcutAction =
  | { type: 'step'; delta: number }
  | { type: 'split'; split: Split }
  | { type: 'save'; thenNext: boolean }
  | { type: 'toggle-select' };

export interface ShortcutDoc {
  keys: string;
  what: string;
}

export const SHORTCUT_DOCS: readonly ShortcutDoc[] = [
  { keys: 'j / ↓ / →', what: 'next' },
  { keys: 'k / ↑ / ←', what: 'previous' },
  { keys: '1 / 2 / 3', what: 'split train / val / test' },
  { keys: 'x', what: 'select' },
  { keys: 'Ctrl+S', what: 'save' },
  { keys: 'Ctrl+Enter', what: 'save and next' },
  { keys: 'Alt+key', what: 'the same inside a text field' },
];

const SPLIT_KEYS: Record<string, Split> = { '1': 'train', '2': 'val', '3': 'test' };

/** True when a plain key press would type into the focused element. */
export function isTextTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !['checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'range', 'color'].includes(target.type);
  }
  return false;
}

type KeyLike = Pick<KeyboardEvent, 'key' | 'code' | 'ctrlKey' | 'metaKey' | 'altKey' | 'shiftKey' | 'target'>;

/** Maps a key press to an action, or null when the key is not ours in this context. */
export function shortcutFor(e: KeyLike): ShortcutAction | null {
  const mod = e.ctrlKey || e.metaKey;
  if (mod && !e.altKey && (e.key === 's' || e.key === 'S')) return { type: 'save', thenNext: false };
  if (mod && e.key === 'Enter') return { type: 'save', thenNext: true };
  if (mod) return null;
  if (isTextTarget(e.target) && !e.altKey) return null;
  // With Alt, `key` may be a composed character on some layouts; `code` names the physical key.
  const key = e.altKey ? codeToKey(e.code) : e.key;
  if (key === 'j' || key === 'ArrowDown' || key === 'ArrowRight') return { type: 'step', delta: 1 };
  if (key === 'k' || key === 'ArrowUp' || key === 'ArrowLeft') return { type: 'step', delta: -1 };
  if (key in SPLIT_KEYS) return { type: 'split', split: SPLIT_KEYS[key] };
  if (key === 'x') return { type: 'toggle-select' };
  return null;
}

function codeToKey(code: string): string {
  if (code.startsWith('Digit')) return code.slice(5);
  if (code.startsWith('Key')) return code.slice(3).toLowerCase();
  return code;
}
