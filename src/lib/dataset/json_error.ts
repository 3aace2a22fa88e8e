// Where and why a JSON text fails to parse, as line and column. Engines word JSON.parse errors
// differently and V8 often gives no position at all (it quotes a snippet instead), so after
// JSON.parse fails we rescan the text with a small strict scanner (RFC 8259 grammar) that
// stops at the first error. It only locates errors; JSON.parse still does the parsing.

export interface JsonErrorInfo {
  message: string;
  /** 0-based character offset. */
  position?: number;
  line?: number;
  column?: number;
}

class Stop {
  constructor(
    readonly pos: number,
    readonly why: string,
  ) {}
}

/** Position and reason of the first syntax error, or undefined if the text is valid JSON. */
export function locateJsonError(text: string): { pos: number; why: string } | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const shown = (p: number) => (p >= text.length ? 'end of text' : `'${text[p]}'`);
  const expect = (what: string) => {
    throw new Stop(i, `expected ${what} but found ${shown(i)}`);
  };
  const str = () => {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) throw new Stop(i, 'unescaped control character (e.g. a raw line break) inside a string');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) throw new Stop(i, 'bad \\u escape in a string');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? '')) throw new Stop(i, `bad escape \\${text[i] ?? ''} in a string`);
      }
      i++;
    }
    if (i >= text.length) throw new Stop(i, 'string is never closed');
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') expect('a "quoted" field name');
        str();
        ws();
        if (text[i] !== ':') expect("':'");
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else expect("',' or '}'");
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else expect("',' or ']'");
      }
    } else if (c === '"') str();
    else if (c !== undefined && /[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) expect('a number');
      i += m![0].length;
    } else {
      for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) return void (i += lit.length);
      expect('a value');
    }
  };
  try {
    value();
    ws();
    if (i < text.length) throw new Stop(i, `unexpected ${shown(i)} after the end of the JSON value`);
  } catch (e) {
    if (e instanceof Stop) return { pos: e.pos, why: e.why };
    throw e;
  }
  return undefined;
}

/** A JSON.parse failure on `text` -> a message naming line, column and reason. */
export function describeJsonError(text: string, err: unknown): JsonErrorInfo {
  const loc = locateJsonError(text);
  if (!loc) return { message: err instanceof Error ? err.message : String(err) };
  const before = text.slice(0, loc.pos);
  const line = before.split('\n').length;
  const column = loc.pos - before.lastIndexOf('\n');
  return { message: `${loc.why} at line ${line}, column ${column}`, position: loc.pos, line, column };
}
