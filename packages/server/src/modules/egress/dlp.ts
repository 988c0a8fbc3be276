import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

export type DlpKind = 'card_number' | 'iban' | 'national_id' | 'email';

/** What the broker found in a request body, by kind, with masked samples (never the values themselves). */
export type DlpFinding = {
  kind: DlpKind;
  count: number;
  samples: string[];
};

/** One value found, where it is in the text. */
type Match = { kind: DlpKind; start: number; end: number; value: string };

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function ibanValid(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const value = /[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of value) rest = (rest * 10 + Number(digit)) % 97;
  }
  return rest === 1;
}

const sample = (value: string) => `${value.slice(0, 2)}…${value.slice(-2)}`;

/**
 * Every card number (13 to 19 digits, spaces or dashes allowed, Luhn-valid), IBAN (ISO 13616, mod-97
 * valid), US social security number (area, group and serial ranges checked) and e-mail address in the
 * text, in order, none overlapping another.
 */
function locate(text: string): Match[] {
  const found: Match[] = [];
  const at = (kind: DlpKind, m: RegExpMatchArray, value: string) =>
    found.push({ kind, start: m.index!, end: m.index! + m[0].length, value });
  for (const m of text.matchAll(/(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length >= 13 && digits.length <= 19 && luhn(digits) && !/^(\d)\1+$/.test(digits))
      at('card_number', m, digits);
  }
  // Either case, matched where it is (indices stay those of the text); only the match is upper-cased.
  for (const m of text.matchAll(/\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?\b/g)) {
    const iban = m[0].replace(/ /g, '').toUpperCase();
    if (iban.length >= 15 && iban.length <= 34 && ibanValid(iban)) at('iban', m, iban);
  }
  for (const m of text.matchAll(/\b(\d{3})-(\d{2})-(\d{4})\b/g)) {
    const [area, group, serial] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0) at('national_id', m, m[0]);
  }
  for (const m of text.matchAll(/\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}\b/g))
    at('email', m, m[0]);
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Match[] = [];
  for (const m of found) if (!kept.length || m.start >= kept[kept.length - 1]!.end) kept.push(m);
  return kept;
}

/** Looks for personal and payment data in text; what it reports holds masked samples, never a value. */
export function inspect(text: string): DlpFinding[] {
  const byKind = new Map<DlpKind, string[]>();
  for (const m of locate(text)) byKind.set(m.kind, [...(byKind.get(m.kind) ?? []), m.value]);
  return [...byKind].map(([kind, values]) => ({
    kind,
    count: values.length,
    samples: values.slice(0, 3).map(sample),
  }));
}

/**
 * What a masked value becomes: a card number keeps its last four digits (as on a receipt), an IBAN its
 * country and last four, a social security number its last four, an e-mail address its domain. The
 * separators stay where they were, so a form or a fixed-width file keeps its shape.
 */
export function maskValue(kind: DlpKind, raw: string): string {
  switch (kind) {
    case 'card_number': {
      let keep = 4;
      return [...raw]
        .reverse()
        .map((c) => (/\d/.test(c) ? (keep-- > 0 ? c : '*') : c))
        .reverse()
        .join('');
    }
    case 'iban': {
      let keep = 4;
      const tail = [...raw.slice(2)]
        .reverse()
        .map((c) => (/[A-Za-z0-9]/.test(c) ? (keep-- > 0 ? c : '*') : c))
        .reverse()
        .join('');
      return raw.slice(0, 2) + tail;
    }
    case 'national_id':
      return `***-**-${raw.slice(-4)}`;
    case 'email':
      return `***${raw.slice(raw.indexOf('@'))}`;
  }
}

/** The text with every value of these kinds masked. */
export function maskText(text: string, kinds: ReadonlySet<DlpKind>): string {
  let out = '';
  let from = 0;
  for (const m of locate(text)) {
    if (!kinds.has(m.kind)) continue;
    out += text.slice(from, m.start) + maskValue(m.kind, text.slice(m.start, m.end));
    from = m.end;
  }
  return out + text.slice(from);
}

/**
 * A request body as DLP reads it: its text, and the body with values of some kinds masked. Compressed
 * bodies (gzip, deflate, br) are read decompressed, and a masked one is sent uncompressed; a form's names
 * and values are read decoded, one per line, and masked one by one. Bytes that are not UTF-8 are read as
 * well as they can be (numbers and addresses in them still show) but cannot be masked: `mask` is null.
 * `text` is null when the body is compressed in a way the broker does not know, or does not decompress.
 */
export function readBody(
  body: Buffer,
  headers: { 'content-encoding'?: string | undefined; 'content-type'?: string | undefined },
  limit: number,
): { text: string | null; mask: ((kinds: ReadonlySet<DlpKind>) => Buffer) | null } {
  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let raw = body;
  try {
    if (encoding === 'gzip' || encoding === 'x-gzip') raw = gunzipSync(body, { maxOutputLength: limit });
    else if (encoding === 'deflate') raw = inflateSync(body, { maxOutputLength: limit });
    else if (encoding === 'br') raw = brotliDecompressSync(body, { maxOutputLength: limit });
    else if (encoding !== 'identity' && encoding !== '') return { text: null, mask: null };
  } catch {
    return { text: null, mask: null };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return { text: raw.toString('latin1'), mask: null };
  }
  if (!/^application\/x-www-form-urlencoded\b/i.test(headers['content-type'] ?? ''))
    return { text, mask: (kinds) => Buffer.from(maskText(text, kinds)) };
  const fields = [...new URLSearchParams(text)];
  return {
    text: fields.flat().join('\n'),
    mask: (kinds) =>
      Buffer.from(
        new URLSearchParams(
          fields.map(([k, v]): [string, string] => [maskText(k, kinds), maskText(v, kinds)]),
        ).toString(),
      ),
  };
}

/**
 * Whether a request carries a CSV file: by its media type, its path, a multipart part's file name or type,
 * or its shape (a header and at least two rows, each with the same number of comma, semicolon or tab
 * separated fields, three or more).
 */
export function looksLikeCsv(contentType: string | undefined, path: string, text: string | null): boolean {
  if (/^(text|application)\/(csv|x-csv|tab-separated-values)\b/i.test(contentType ?? '')) return true;
  if (/\.(csv|tsv)$/i.test(path.split('?')[0] ?? '')) return true;
  if (text === null) return false;
  if (/^content-disposition:[^\r\n]*filename\*?="?[^"\r\n]*\.(csv|tsv)"?/im.test(text)) return true;
  if (/^content-type:\s*text\/(csv|tab-separated-values)\b/im.test(text)) return true;
  const lines = text.split(/\r?\n/, 21).filter((l) => l.trim() !== '');
  if (lines.length < 3 || /^\s*[[{]/.test(text)) return false;
  return [',', ';', '\t'].some((sep) => {
    const fields = (l: string) => l.replace(/"[^"]*"/g, '""').split(sep).length;
    const first = fields(lines[0]!);
    return first >= 3 && lines.every((l) => fields(l) === first);
  });
}

/** Which data class an app must be approved for before each kind may leave it. */
export const dlpClassFor: Record<DlpKind, string> = {
  card_number: 'regulated',
  iban: 'financial',
  national_id: 'pii',
  email: 'pii',
};
