import { type Location, RegoError } from './errors.ts';

export type TokenKind = 'ident' | 'string' | 'rawstring' | 'template' | 'number' | 'op' | 'eof';

/** A token, with whether a newline came before it (newlines separate expressions in bodies). */
export type Token = {
  kind: TokenKind;
  text: string;
  /** For strings: the decoded value; for templates: the raw parts between braces. */
  value?: string;
  parts?: TemplatePart[];
  nl: boolean;
  loc: Location;
  end: number;
};

export type TemplatePart = { kind: 'text'; text: string } | { kind: 'expr'; source: string; loc: Location };

const ops = [
  ':=',
  '==',
  '!=',
  '<=',
  '>=',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '[',
  ']',
  '{',
  '}',
  '(',
  ')',
  ',',
  ';',
  '.',
  ':',
];

const isIdentStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdent = (c: string) => /[A-Za-z0-9_]/.test(c);

/** Splits Rego source into tokens. */
export function lex(source: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let row = 1;
  let lineStart = 0;
  let nl = false;
  const loc = (at: number): Location => ({ file, row, col: at - lineStart + 1 });
  const fail = (at: number, message: string): never => {
    throw new RegoError('rego_parse_error', message, loc(at), source);
  };

  function readString(start: number): { value: string; end: number } {
    let j = start + 1;
    let out = '';
    while (j < source.length) {
      const c = source[j]!;
      if (c === '"') return { value: out, end: j + 1 };
      if (c === '\n') fail(start, 'non-terminated string');
      if (c === '\\') {
        const e = source[j + 1];
        const map: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e !== undefined && e in map) {
          out += map[e];
          j += 2;
          continue;
        }
        if (e === 'u') {
          const hex = source.slice(j + 2, j + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(j, 'illegal unicode escape');
          let code = Number.parseInt(hex, 16);
          j += 6;
          // Surrogate pairs arrive as two escapes.
          if (code >= 0xd800 && code < 0xdc00 && source.slice(j, j + 2) === '\\u') {
            const low = Number.parseInt(source.slice(j + 2, j + 6), 16);
            if (low >= 0xdc00 && low < 0xe000) {
              code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
              j += 6;
            }
          }
          out += String.fromCodePoint(code);
          continue;
        }
        fail(j, `illegal escape sequence \\${e ?? ''}`);
      }
      out += c;
      j++;
    }
    return fail(start, 'non-terminated string');
  }

  while (i < source.length) {
    const c = source[i]!;
    if (c === '\n') {
      i++;
      row++;
      lineStart = i;
      nl = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
      continue;
    }
    const start = i;
    const push = (kind: TokenKind, text: string, extra: Partial<Token> = {}) => {
      tokens.push({ kind, text, nl, loc: loc(start), end: i, ...extra });
      nl = false;
    };
    if (c === '$' && (source[i + 1] === '"' || source[i + 1] === '`')) {
      const parts = readTemplate(i + 1);
      push('template', source.slice(start, i), { parts });
      continue;
    }
    if (isIdentStart(c)) {
      while (i < source.length && isIdent(source[i]!)) i++;
      push('ident', source.slice(start, i));
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(source.slice(i));
      if (!m) fail(i, 'illegal number');
      i += m![0].length;
      if (i < source.length && (isIdent(source[i]!) || source[i] === '.')) {
        if (source[i] === '.' && !/[0-9]/.test(source[i + 1] ?? '')) {
          // `1.foo` is not a number followed by a ref; treat as error like OPA.
        }
        if (isIdent(source[i]!)) fail(start, 'illegal number format');
      }
      push('number', m![0]);
      continue;
    }
    if (c === '"') {
      const { value, end } = readString(i);
      i = end;
      push('string', source.slice(start, i), { value });
      continue;
    }
    if (c === '`') {
      const end = source.indexOf('`', i + 1);
      if (end < 0) fail(i, 'non-terminated raw string');
      const value = source.slice(i + 1, end);
      for (const ch of value)
        if (ch === '\n') {
          row++;
        }
      const lastNl = value.lastIndexOf('\n');
      i = end + 1;
      if (lastNl >= 0) lineStart = start + 1 + lastNl + 1;
      tokens.push({
        kind: 'rawstring',
        text: source.slice(start, i),
        value,
        nl,
        loc: { file, row: row - (value.split('\n').length - 1), col: start - lineStart + 1 },
        end: i,
      });
      nl = false;
      continue;
    }
    const op = ops.find((o) => source.startsWith(o, i));
    if (!op) fail(i, `unexpected character ${JSON.stringify(c)}`);
    i += op!.length;
    push('op', op!);
  }
  tokens.push({ kind: 'eof', text: '', nl: true, loc: loc(i), end: i });
  return tokens;

  /** Reads a template string starting at its quote; returns its parts and moves `i` past it. */
  function readTemplate(q: number): TemplatePart[] {
    const raw = source[q] === '`';
    const parts: TemplatePart[] = [];
    let j = q + 1;
    let text = '';
    for (;;) {
      if (j >= source.length) fail(q, 'non-terminated template string');
      const ch = source[j]!;
      if ((raw && ch === '`') || (!raw && ch === '"')) {
        j++;
        break;
      }
      if (!raw && ch === '\n') fail(q, 'non-terminated template string');
      if (ch === '\\' && !raw) {
        const e = source[j + 1]!;
        if (e === '{') {
          text += '{';
          j += 2;
          continue;
        }
        // Reuse the string decoder on a one-escape string.
        const esc = e === 'u' ? source.slice(j, j + 6) : source.slice(j, j + 2);
        const { value } = readStringFrom(`"${esc}"`);
        text += value;
        j += esc.length;
        continue;
      }
      if (ch === '{') {
        if (text) parts.push({ kind: 'text', text });
        text = '';
        let depth = 1;
        let k = j + 1;
        let inStr = false;
        while (k < source.length && depth > 0) {
          const d = source[k]!;
          if (inStr) {
            if (d === '\\') k++;
            else if (d === '"') inStr = false;
          } else if (d === '"') inStr = true;
          else if (d === '{') depth++;
          else if (d === '}') depth--;
          k++;
        }
        if (depth > 0) fail(j, 'unterminated template expression');
        const colStart = j + 1 - lineStart + 1;
        parts.push({ kind: 'expr', source: source.slice(j + 1, k - 1), loc: { file, row, col: colStart } });
        j = k;
        continue;
      }
      if (ch === '\n') {
        row++;
        lineStart = j + 1;
      }
      text += ch;
      j++;
    }
    if (text) parts.push({ kind: 'text', text });
    i = j;
    return parts;
  }

  function readStringFrom(s: string): { value: string } {
    return { value: JSON.parse(s) as string };
  }
}
