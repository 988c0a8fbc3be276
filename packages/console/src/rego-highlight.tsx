import type { ReactNode } from 'react';

const keywords = new Set([
  'package',
  'import',
  'default',
  'not',
  'some',
  'every',
  'in',
  'if',
  'contains',
  'else',
  'with',
  'as',
  'true',
  'false',
  'null',
]);

/**
 * Rego as highlighted spans: comments, strings, numbers and keywords. The text is rendered as React text
 * nodes (never as HTML), so a module's content cannot inject markup into the console.
 */
export function highlightRego(source: string): ReactNode[] {
  const out: ReactNode[] = [];
  const token =
    /(#[^\n]*)|("(?:[^"\\\n]|\\.)*"|`[^`]*`)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+|.)/g;
  let key = 0;
  let plain = '';
  const flush = () => {
    if (plain) out.push(plain);
    plain = '';
  };
  for (const m of source.matchAll(token)) {
    const [text, comment, string, number, word] = m;
    const cls = comment
      ? 'tok-comment'
      : string
        ? 'tok-string'
        : number
          ? 'tok-number'
          : word && keywords.has(word)
            ? 'tok-keyword'
            : null;
    if (!cls) {
      plain += text;
      continue;
    }
    flush();
    out.push(
      <span key={key++} className={cls}>
        {text}
      </span>,
    );
  }
  flush();
  return out;
}
