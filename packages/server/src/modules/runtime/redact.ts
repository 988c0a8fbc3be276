/**
 * Redaction of an app's secrets from what the app prints, before anything quotes it (stored logs, a failed
 * start's message, a build record, the server log). A hostile or careless app does not print a secret
 * plainly: it prints it base64-encoded at some offset, in hex, as JSON `\u` escapes, URL-encoded, or in
 * upper case. Each of those views of a line is checked; known forms are replaced in place with
 * `[redacted:NAME]`, and a line that still hides a secret in some view is replaced whole.
 */

/** Values shorter than this are not looked for: they would blank out ordinary words and numbers. */
const shortest = 6;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The forms of a value a program would print without thinking: plain, URL, base64 (any alignment), hex, JSON. */
function formsOf(value: string): string[] {
  const bytes = Buffer.from(value);
  const forms = new Set<string>([value, encodeURIComponent(value), bytes.toString('hex')]);
  forms.add([...value].map((c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`).join(''));
  // Base64 of the value at each of the three alignments it can have inside a longer encoded text: the
  // characters that depend only on the value's bytes, without the ones shared with its neighbours.
  for (let pad = 0; pad < 3; pad++) {
    const text = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const start = pad === 0 ? 0 : pad === 1 ? 2 : 3;
    const whole = Math.floor((pad + bytes.length) / 3) * 4;
    const core = text.slice(start, whole);
    forms.add(core.replace(/=+$/, ''));
    forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  forms.add(bytes.toString('base64'));
  forms.add(bytes.toString('base64url'));
  // A connection URL's password is a secret of its own.
  try {
    const password = decodeURIComponent(new URL(value).password);
    if (password) for (const f of formsOf(password)) forms.add(f);
  } catch {}
  return [...forms].filter((f) => f.length >= shortest);
}

/** Decodings of a line in which a secret could hide, each lower-cased: what the checks compare against. */
function viewsOf(line: string): string[] {
  const views = [line];
  // JSON and JavaScript escapes, also escaped twice (JSON inside JSON).
  views.push(
    line
      .replace(/\\+u\{([0-9a-fA-F]{1,6})\}/g, (m: string, h: string) => {
        const code = Number.parseInt(h, 16);
        return code <= 0x10ffff ? String.fromCodePoint(code) : m;
      })
      .replace(/\\+u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
      .replace(/\\+x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
  );
  try {
    views.push(decodeURIComponent(line.replace(/\+/g, ' ')));
  } catch {}
  // Every run of base64 or hex characters, decoded from each alignment it could start at.
  for (const run of line.match(/[A-Za-z0-9+/_-]{8,}/g) ?? [])
    for (let skip = 0; skip < 4; skip++)
      views.push(
        Buffer.from(run.slice(skip).replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1'),
      );
  for (const run of line.match(/[0-9a-fA-F]{12,}/g) ?? [])
    for (let skip = 0; skip < 2; skip++) views.push(Buffer.from(run.slice(skip), 'hex').toString('latin1'));
  return views.map((v) => v.toLowerCase());
}

/**
 * A function that redacts the given secrets from one line of text (or a block of lines: each is checked on
 * its own). Matching ignores case.
 * @example redactor({ API_TOKEN: 'tok-123456' })('token TOK-123456') // 'token [redacted:API_TOKEN]'
 */
export function redactor(secrets: Record<string, string>): (text: string) => string {
  const wanted = Object.entries(secrets).filter(([, v]) => v.length >= shortest);
  if (wanted.length === 0) return (text) => text;
  const needles: [string, string][] = [];
  for (const [name, value] of wanted) for (const form of formsOf(value)) needles.push([form, name]);
  // Longest first, so a value that contains another is replaced whole.
  needles.sort((a, b) => b[0].length - a[0].length);
  const pattern = new RegExp(needles.map(([f]) => escapeRegExp(f)).join('|'), 'gi');
  const nameOf = new Map(needles.map(([f, n]) => [f.toLowerCase(), n]));
  // What the views are searched for: the value itself, and the password of a connection URL, as bytes
  // read back as latin1 (what a decoded base64 or hex view holds) and as text.
  const hidden: [string, string][] = [];
  for (const [name, value] of wanted) {
    const plain = [value];
    try {
      const password = decodeURIComponent(new URL(value).password);
      if (password.length >= shortest) plain.push(password);
    } catch {}
    for (const p of plain) {
      hidden.push([p.toLowerCase(), name]);
      hidden.push([Buffer.from(p).toString('latin1').toLowerCase(), name]);
    }
  }
  const one = (line: string) => {
    const out = line.replace(pattern, (m) => `[redacted:${nameOf.get(m.toLowerCase()) ?? 'secret'}]`);
    const views = viewsOf(out);
    const left = hidden.filter(([needle]) => views.some((v) => v.includes(needle)));
    if (left.length === 0) return out;
    const names = [...new Set(left.map(([, n]) => n))].join(', ');
    return `[redacted: this line held ${names} in an encoded form]`;
  };
  return (text) => (text.includes('\n') ? text.split('\n').map(one).join('\n') : one(text));
}
