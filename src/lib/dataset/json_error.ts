// Where a JSON.parse error happened, as line and column. V8 (Chrome, Node) ends its messages
// with "at position N"; other engines say "line L column C". We turn either into one form.

export interface JsonErrorInfo {
  message: string;
  /** 0-based character offset, when the engine told us. */
  position?: number;
  line?: number;
  column?: number;
}

export function describeJsonError(text: string, err: unknown): JsonErrorInfo {
  const raw = err instanceof Error ? err.message : String(err);
  const pos = /at position (\d+)/.exec(raw);
  if (pos) {
    const position = Number(pos[1]);
    const before = text.slice(0, position);
    const line = before.split('\n').length;
    const column = position - before.lastIndexOf('\n');
    const message = raw.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+/, '').replace(/ at position \d+/, '');
    return { message: `${message} at line ${line}, column ${column} (position ${position})`, position, line, column };
  }
  const lc = /line (\d+) column (\d+)/.exec(raw);
  if (lc) return { message: raw, line: Number(lc[1]), column: Number(lc[2]) };
  return { message: raw };
}
