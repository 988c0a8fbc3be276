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
  // With dashes or spaces anywhere; nine digits in a row only where the text says it is one. Two passes:
  // a lookbehind for the words, tried at every position of a large body, cost more than the rest together.
  const ssn = (start: number, digits: [string, string, string], value: string) => {
    const [area, group, serial] = digits.map(Number) as [number, number, number];
    if (area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0)
      found.push({ kind: 'national_id', start, end: start + value.length, value });
  };
  for (const m of text.matchAll(/\b(\d{3})[- ](\d{2})[- ](\d{4})\b/g))
    ssn(m.index!, [m[1]!, m[2]!, m[3]!], m[0]);
  for (const m of text.matchAll(
    /(?:ssn|social security(?: number)?|social_security|taxpayer id|tin)\W{0,20}\b((\d{3})(\d{2})(\d{4}))\b/dgi,
  ))
    ssn(m.indices![1]![0], [m[2]!, m[3]!, m[4]!], m[1]!);
  if (text.includes('@'))
    for (const m of text.matchAll(/\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}\b/g))
      at('email', m, m[0]);
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Match[] = [];
  for (const m of found) if (!kept.length || m.start >= kept[kept.length - 1]!.end) kept.push(m);
  return kept;
}

const zeroWidth = /[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/g;

/** The value of any Unicode decimal digit: Unicode keeps each script's digits as a run of ten from zero. */
function digitValue(c: string): string {
  const cp = c.codePointAt(0)!;
  let start = cp;
  while (start > 0 && /\p{Nd}/u.test(String.fromCodePoint(start - 1)) && cp - start < 40) start--;
  return String((cp - start) % 10);
}

/**
 * Text as DLP reads it, undisguised: JSON and JavaScript escapes decoded, NFKC (full-width digits and
 * letters become ASCII), every script's decimal digits as ASCII ones, zero-width and bidirectional
 * characters dropped, `.`, `/`, `_` and `·` between digits read as spaces, and the items of a JSON array
 * of digit groups (`[4111, 1111, 1111, 1111]`) read as one spaced number.
 */
export function undisguise(text: string): string {
  let t = text;
  // Each step only where it can change something: a large plain-ASCII body skips most of them.
  if (t.includes('\\'))
    t = t
      .replace(/\\+u\{([0-9a-fA-F]{1,6})\}/g, (m, h: string) => {
        const cp = Number.parseInt(h, 16);
        return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
      })
      .replace(/\\+u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
      .replace(/\\+x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for anything outside ASCII
  if (/[^\x00-\x7f]/.test(t))
    t = t
      .normalize('NFKC')
      .replace(zeroWidth, '')
      .replace(/(?![0-9])\p{Nd}/gu, digitValue);
  return t
    .replace(/(\d)[./_\u00b7\u2022](?=\d)/g, '$1 ')
    .replace(/\[\s*"?\d{2,6}"?(?:\s*,\s*"?\d{2,6}"?){1,8}\s*\]/g, (m) => m.replace(/[^\d]+/g, ' ').trim());
}

/**
 * Looks for personal and payment data in text, as written and undisguised (see `undisguise`); what it
 * reports holds masked samples, never a value.
 */
export function inspect(text: string): DlpFinding[] {
  const byKind = new Map<DlpKind, string[]>();
  const plain = locate(text);
  const clear = undisguise(text);
  // The undisguised reading adds what the plain one missed: per value, the larger of the two counts.
  const key = (m: Match) => `${m.kind}:${m.value.replace(/\D/g, '') || m.value.toLowerCase()}`;
  const counted = new Map<string, number>();
  for (const m of plain) counted.set(key(m), (counted.get(key(m)) ?? 0) + 1);
  const extra = clear === text ? [] : locate(clear);
  const again = new Map<string, number>();
  const found = [
    ...plain,
    ...extra.filter((m) => {
      const n = (again.get(key(m)) ?? 0) + 1;
      again.set(key(m), n);
      return n > (counted.get(key(m)) ?? 0);
    }),
  ];
  for (const m of found) byKind.set(m.kind, [...(byKind.get(m.kind) ?? []), m.value]);
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
): { text: string | null; mask: ((kinds: ReadonlySet<DlpKind>) => Buffer | null) | null } {
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
  const contentType = headers['content-type'] ?? '';
  // Parts that are base64 or compressed, and UTF-16 text, are read decoded; the broker cannot mask them.
  const parts = multipartText(raw, contentType, limit);
  if (parts?.decoded) return { text: parts.text, mask: null };
  // Both readings: what looks like UTF-16 may be bytes that only start like it.
  const utf16 = decodeText(raw.subarray(0, 1024), contentType);
  if (utf16 !== raw.subarray(0, 1024).toString('utf8'))
    return { text: `${decodeText(raw, contentType)}\n${raw.toString('latin1')}`, mask: null };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return { text: raw.toString('latin1'), mask: null };
  }
  // A masked body is read again, undisguised: a value hidden from the masking (escaped, in another
  // script's digits, split up) that is still there means the body cannot be masked, only refused.
  const checked = (kinds: ReadonlySet<DlpKind>, masked: string, asText: string) =>
    inspect(asText).some((f) => kinds.has(f.kind)) ? null : Buffer.from(masked);
  if (!/^application\/x-www-form-urlencoded\b/i.test(headers['content-type'] ?? ''))
    return {
      text,
      mask: (kinds) => {
        const masked = maskText(text, kinds);
        return checked(kinds, masked, masked);
      },
    };
  const fields = [...new URLSearchParams(text)];
  return {
    text: fields.flat().join('\n'),
    mask: (kinds) => {
      const maskedFields = fields.map(([k, v]): [string, string] => [maskText(k, kinds), maskText(v, kinds)]);
      return checked(kinds, new URLSearchParams(maskedFields).toString(), maskedFields.flat().join('\n'));
    },
  };
}

/** Headers that say how to carry a request, not what it says; credentials are the broker's own concern. */
const notContent = new Set([
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'accept',
  'accept-encoding',
  'accept-language',
  'user-agent',
  'authorization',
  'proxy-authorization',
  'traceparent',
  'tracestate',
]);

/**
 * What a request carries besides its body, as text for DLP: its path and query string decoded (a value in
 * a query is as much sent as one in a body), and the values of its headers.
 */
export function requestText(path: string, headers: Record<string, string | string[] | undefined>): string {
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      return s;
    }
  };
  const [pathname = '', query = ''] = path.split('?', 2);
  const lines = [decode(pathname), ...query.split('&').map(decode)];
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !notContent.has(name.toLowerCase()))
      lines.push(...(Array.isArray(value) ? value : [value]));
  return lines.join('\n');
}

/**
 * The parts of a multipart body, each decoded the way its own headers say (base64, quoted-printable, or
 * gzip), as text for DLP; null when the body is not multipart.
 */
function multipartText(
  raw: Buffer,
  contentType: string,
  limit: number,
): { text: string; decoded: boolean } | null {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!/^multipart\//i.test(contentType) || !boundary) return null;
  const out: string[] = [];
  let decoded = false;
  for (const part of raw.toString('latin1').split(`--${boundary}`)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = part.slice(0, split);
    let bytes = Buffer.from(part.slice(split + 4).replace(/\r\n$/, ''), 'latin1');
    const before = bytes;
    if (/^content-transfer-encoding:\s*base64/im.test(head))
      bytes = Buffer.from(bytes.toString('latin1').replace(/\s+/g, ''), 'base64');
    else if (/^content-transfer-encoding:\s*quoted-printable/im.test(head))
      bytes = Buffer.from(
        bytes
          .toString('latin1')
          .replace(/=\r?\n/g, '')
          .replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
        'latin1',
      );
    if (bytes[0] === 0x1f && bytes[1] === 0x8b)
      try {
        bytes = gunzipSync(bytes, { maxOutputLength: limit });
      } catch {}
    const text = decodeText(bytes, head);
    if (bytes !== before || text !== bytes.toString('utf8')) decoded = true;
    out.push(head, text);
  }
  return { text: out.join('\n'), decoded };
}

/** Bytes as text: UTF-16 when a byte-order mark or a charset says so (or every other byte is zero), else UTF-8. */
function decodeText(bytes: Buffer, contentType: string): string {
  const charset = /charset="?([\w-]+)/i.exec(contentType)?.[1]?.toLowerCase();
  const zeros = (from: number) => {
    let n = 0;
    for (let i = from; i < Math.min(bytes.length, 512); i += 2) if (bytes[i] === 0) n++;
    return n > Math.min(bytes.length, 512) / 4;
  };
  if (
    (bytes[0] === 0xff && bytes[1] === 0xfe) ||
    charset === 'utf-16le' ||
    (charset === 'utf-16' && bytes[0] !== 0xfe) ||
    zeros(1)
  )
    return new TextDecoder('utf-16le').decode(bytes);
  if ((bytes[0] === 0xfe && bytes[1] === 0xff) || charset === 'utf-16be' || zeros(0))
    return new TextDecoder('utf-16be').decode(bytes);
  return bytes.toString('utf8');
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
