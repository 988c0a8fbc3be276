import { RE2JS } from 're2js';
import {
  BigNum,
  formatNumber,
  formatValue,
  isNumber,
  RObject,
  RSet,
  typeName,
  type Value,
} from '../value.ts';
import { arr, builtinError, collection, def, int, num, operandError, str, typeError } from './registry.ts';

const runes = (s: string) => [...s];

def('concat', 2, (args) => {
  const sep = str(args, 0);
  const items = collection(args, 1);
  return items
    .map((x) => {
      if (typeof x !== 'string')
        throw typeError(`operand 2 must be one of {array, set} of strings but got ${typeName(x)}`);
      return x;
    })
    .join(sep);
});
def('contains', 2, (args) => str(args, 0).includes(str(args, 1)));
def('startswith', 2, (args) => str(args, 0).startsWith(str(args, 1)));
def('endswith', 2, (args) => str(args, 0).endsWith(str(args, 1)));
def('lower', 1, (args) => str(args, 0).toLowerCase());
def('upper', 1, (args) => str(args, 0).toUpperCase());
def('split', 2, (args) => {
  const s = str(args, 0);
  const sep = str(args, 1);
  return sep === '' ? runes(s) : s.split(sep);
});
def('replace', 3, (args) => {
  const s = str(args, 0);
  const old = str(args, 1);
  const nu = str(args, 2);
  if (old === '') return runes(s).join(nu).replace(/^/, nu) + (s === '' ? '' : nu);
  return s.split(old).join(nu);
});
def('strings.replace_n', 2, (args) => {
  const patterns = args[0]!;
  if (!(patterns instanceof RObject)) throw operandError(0, 'object', patterns);
  let s = str(args, 1);
  const pairs = patterns.sortedEntries().map(([k, v]) => {
    if (typeof k !== 'string') throw typeError('operand 1 must be object[string: string]');
    if (typeof v !== 'string')
      throw typeError(`operand 1 must be object[string: string] but got object[string: ${typeName(v)}]`);
    return [k, v] as const;
  });
  // Go's strings.NewReplacer: at each position, the first matching old string in argument order.
  let out = '';
  let i = 0;
  outer: while (i < s.length) {
    for (const [o, n] of pairs) {
      if (o !== '' && s.startsWith(o, i)) {
        out += n;
        i += o.length;
        continue outer;
      }
    }
    out += s[i];
    i++;
  }
  s = out;
  return s;
});
def('strings.reverse', 1, (args) => runes(str(args, 0)).reverse().join(''));
def('strings.count', 2, (args) => {
  const s = str(args, 0);
  const sub = str(args, 1);
  if (sub === '') return runes(s).length + 1;
  return s.split(sub).length - 1;
});
def('indexof', 2, (args) => {
  const s = runes(str(args, 0));
  const sub = runes(str(args, 1));
  if (sub.length === 0) return 0;
  for (let i = 0; i + sub.length <= s.length; i++) if (sub.every((c, j) => s[i + j] === c)) return i;
  return -1;
});
def('indexof_n', 2, (args) => {
  const s = runes(str(args, 0));
  const sub = runes(str(args, 1));
  const out: number[] = [];
  if (sub.length === 0) return out;
  for (let i = 0; i + sub.length <= s.length; i++) if (sub.every((c, j) => s[i + j] === c)) out.push(i);
  return out;
});
def('substring', 3, (args) => {
  const s = runes(str(args, 0));
  const start = int(args, 1);
  const len = int(args, 2);
  if (start < 0) throw builtinError('negative offset');
  if (start >= s.length) return '';
  return (len < 0 ? s.slice(start) : s.slice(start, start + len)).join('');
});
const cutset = (cs: string) => new Set(runes(cs));
function trimLeftSet(s: string, set: Set<string>) {
  const r = runes(s);
  let i = 0;
  while (i < r.length && set.has(r[i]!)) i++;
  return r.slice(i).join('');
}
function trimRightSet(s: string, set: Set<string>) {
  const r = runes(s);
  let j = r.length;
  while (j > 0 && set.has(r[j - 1]!)) j--;
  return r.slice(0, j).join('');
}
def('trim', 2, (args) => trimRightSet(trimLeftSet(str(args, 0), cutset(str(args, 1))), cutset(str(args, 1))));
def('trim_left', 2, (args) => trimLeftSet(str(args, 0), cutset(str(args, 1))));
def('trim_right', 2, (args) => trimRightSet(str(args, 0), cutset(str(args, 1))));
def('trim_prefix', 2, (args) => {
  const s = str(args, 0);
  const p = str(args, 1);
  return s.startsWith(p) ? s.slice(p.length) : s;
});
def('trim_suffix', 2, (args) => {
  const s = str(args, 0);
  const p = str(args, 1);
  return p !== '' && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
});
def('trim_space', 1, (args) => str(args, 0).replace(/^[\s\u0085\u00a0]+|[\s\u0085\u00a0]+$/gu, ''));
function anyMatch(args: Value[], test: (s: string, p: string) => boolean) {
  const list = (i: number) => {
    const v = args[i]!;
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) || v instanceof RSet) {
      const items = Array.isArray(v) ? v : v.values();
      for (const x of items)
        if (typeof x !== 'string')
          throw typeError(
            `operand ${i + 1} must be ${Array.isArray(v) ? 'array' : 'set'} of strings but got ${Array.isArray(v) ? 'array' : 'set'} containing ${typeName(x)}`,
          );
      return items as string[];
    }
    throw typeError(`operand ${i + 1} must be one of {string, set, array} but got ${typeName(v)}`);
  };
  const ss = list(0);
  const ps = list(1);
  return ss.some((s) => ps.some((p) => test(s, p)));
}
def('strings.any_prefix_match', 2, (args) => anyMatch(args, (s, p) => s.startsWith(p)));
def('strings.any_suffix_match', 2, (args) => anyMatch(args, (s, p) => s.endsWith(p)));
def('format_int', 2, (args) => {
  const v = args[0];
  if (v instanceof BigNum) {
    const base = int(args, 1);
    return v.big.toString(base);
  }
  const n = num(args, 0);
  const base = int(args, 1);
  if (![2, 8, 10, 16].includes(base)) throw builtinError('operand 2 must be one of {2, 8, 10, 16}');
  const t = Math.trunc(n);
  return (t < 0 ? '-' : '') + Math.abs(t).toString(base);
});

// sprintf with Go's verbs.
const verbRe = /([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])/y;

function goFormat(format: string, values: Value[]): string {
  let out = '';
  let argi = 0;
  for (let i = 0; i < format.length; i++) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct;
    // %v alone, the verb nearly every policy message uses, without the verb parser.
    if (format.charCodeAt(i + 1) === 118 && argi < values.length) {
      const v = values[argi++]!;
      out += typeof v === 'string' ? v : formatValue(v);
      i += 1;
      continue;
    }
    verbRe.lastIndex = i + 1;
    const m = verbRe.exec(format);
    if (!m) {
      out += '%!(NOVERB)';
      continue;
    }
    i += m[0].length;
    const [, flags = '', widthRaw, precRaw, verb] = m;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= values.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const v = values[argi++]!;
    const prec = precRaw === undefined ? undefined : Number(precRaw);
    let s: string;
    switch (verb) {
      case 'v':
        s = typeof v === 'string' ? v : formatValue(v);
        break;
      case 's':
        s = typeof v === 'string' ? v : formatValue(v);
        if (prec !== undefined) s = [...s].slice(0, prec).join('');
        break;
      case 'q':
        s = typeof v === 'string' ? JSON.stringify(v) : `%!q(${formatValue(v)})`;
        break;
      case 'd':
        s =
          isNumber(v) && (v instanceof BigNum || Number.isInteger(v))
            ? v instanceof BigNum
              ? v.big.toString()
              : String(v)
            : `%!d(${typeName(v) === 'number' ? `float64=${formatValue(v)}` : formatValue(v)})`;
        if (flags.includes('+') && isNumber(v) && !String(s).startsWith('-')) s = `+${s}`;
        break;
      case 'f':
      case 'F':
        s = isNumber(v)
          ? Number(v instanceof BigNum ? v.big : v).toFixed(prec ?? 6)
          : `%!f(${formatValue(v)})`;
        break;
      case 'e':
        s = isNumber(v)
          ? goExp(Number(v instanceof BigNum ? v.big : v), prec ?? 6)
          : `%!e(${formatValue(v)})`;
        break;
      case 'g':
        s = isNumber(v)
          ? prec !== undefined
            ? String(Number(Number(v).toPrecision(prec)))
            : formatNumber(Number(v))
          : `%!g(${formatValue(v)})`;
        break;
      case 'x':
      case 'X': {
        if (typeof v === 'string') s = Buffer.from(v, 'utf8').toString('hex');
        else if (isNumber(v))
          s = (v instanceof BigNum ? v.big : BigInt(Math.trunc(v as number))).toString(16);
        else s = `%!x(${formatValue(v)})`;
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'o':
        s = isNumber(v) ? Math.trunc(Number(v)).toString(8) : `%!o(${formatValue(v)})`;
        break;
      case 'b':
        s = isNumber(v) ? Math.trunc(Number(v)).toString(2) : `%!b(${formatValue(v)})`;
        break;
      case 't':
        s = typeof v === 'boolean' ? String(v) : `%!t(${formatValue(v)})`;
        break;
      default:
        s = `%!${verb}(${formatValue(v)})`;
    }
    const width = widthRaw && widthRaw !== '*' ? Number(widthRaw) : 0;
    if (s.length < width)
      s = flags.includes('-')
        ? s.padEnd(width)
        : s.padStart(width, flags.includes('0') && !flags.includes('-') ? '0' : ' ');
    out += s;
  }
  if (argi < values.length)
    out += `%!(EXTRA ${values
      .slice(argi)
      .map((v) => `${goType(v)}=${typeof v === 'string' ? v : formatValue(v)}`)
      .join(', ')})`;
  return out;
}
function goType(v: Value) {
  return typeof v === 'string' ? 'string' : isNumber(v) ? 'json.Number' : typeName(v);
}
function goExp(n: number, prec: number) {
  const [m, e] = n.toExponential(prec).split('e');
  const exp = Number(e);
  return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}
def('sprintf', 2, (args) => goFormat(str(args, 0), arr(args, 1)));

// Regular expressions follow RE2 (Go) semantics through re2js, never JavaScript's RegExp.
const cache = new Map<string, RE2JS>();
function re(pattern: string): RE2JS {
  let r = cache.get(pattern);
  if (!r) {
    try {
      r = RE2JS.compile(pattern);
    } catch (error) {
      throw builtinError(`error parsing regexp: ${(error as Error).message}`);
    }
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, r);
  }
  return r;
}
def('regex.match', 2, (args) => re(str(args, 0)).matcher(str(args, 1)).find());
def('re_match', 2, (args) => re(str(args, 0)).matcher(str(args, 1)).find());
def('regex.is_valid', 1, (args) => {
  const p = args[0]!;
  if (typeof p !== 'string') return false;
  try {
    RE2JS.compile(p);
    return true;
  } catch {
    return false;
  }
});
def('regex.find_n', 3, (args) => {
  const m = re(str(args, 0)).matcher(str(args, 1));
  const n = int(args, 2);
  const out: string[] = [];
  while ((n < 0 || out.length < n) && m.find()) out.push(m.group() ?? '');
  return out;
});
def('regex.find_all_string_submatch_n', 3, (args) => {
  const m = re(str(args, 0)).matcher(str(args, 1));
  const n = int(args, 2);
  const out: string[][] = [];
  while ((n < 0 || out.length < n) && m.find()) {
    const groups: string[] = [];
    for (let g = 0; g <= m.groupCount(); g++) groups.push(m.group(g) ?? '');
    out.push(groups);
  }
  return out;
});
def('regex.split', 2, (args) => {
  const r = re(str(args, 0));
  const s = str(args, 1);
  const m = r.matcher(s);
  const out: string[] = [];
  let last = 0;
  while (m.find()) {
    if (m.end() === 0 && m.start() === 0) continue;
    out.push(s.slice(last, m.start()));
    last = m.end();
  }
  out.push(s.slice(last));
  return out;
});
def('regex.replace', 3, (args) => {
  const s = str(args, 0);
  const m = re(str(args, 1)).matcher(s);
  const repl = str(args, 2);
  return m.replaceAll((...groups: unknown[]) => expandGo(repl, groups as string[]));
});
/** Go's $1 / ${1} / ${name} expansion in replacement strings. */
function expandGo(template: string, groups: string[]): string {
  return template.replace(/\$(\d+|\{(\w+)\}|\$)/g, (_all, a: string, b?: string) => {
    if (a === '$') return '$';
    const key = b ?? a;
    const idx = Number(key);
    if (Number.isInteger(idx)) return typeof groups[idx] === 'string' ? groups[idx] : '';
    return '';
  });
}
def('regex.template_match', 4, (args) => {
  const template = str(args, 0);
  const s = str(args, 1);
  const open = str(args, 2);
  const close = str(args, 3);
  let pattern = '^';
  let i = 0;
  while (i < template.length) {
    const o = template.indexOf(open, i);
    if (o < 0) {
      pattern += RE2JS.quote(template.slice(i));
      break;
    }
    const c = template.indexOf(close, o + open.length);
    if (c < 0) throw builtinError('unbalanced delimiters');
    pattern += RE2JS.quote(template.slice(i, o)) + `(?:${template.slice(o + open.length, c)})`;
    i = c + close.length;
  }
  return re(`${pattern}$`).matcher(s).find();
});

// Globs (gobwas/glob semantics for the common subset: * ? ** [..] {a,b}).
function globToRe(pattern: string, delimiters: string[]): string {
  const delims = delimiters.map((d) => RE2JS.quote(d)).join('');
  const notDelim = delims ? `[^${delims.replace(/\\Q|\\E/g, '').replace(/[\]\\^-]/g, '\\$&')}]` : '.';
  let out = '';
  let i = 0;
  let inAlt = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        out += '.*';
        i += 2;
      } else {
        out += `${notDelim}*`;
        i++;
      }
    } else if (c === '?') {
      out += notDelim;
      i++;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw builtinError('unexpected end of input');
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      out += `[${cls}]`;
      i = end + 1;
    } else if (c === '{') {
      out += '(?:';
      inAlt++;
      i++;
    } else if (c === '}' && inAlt > 0) {
      out += ')';
      inAlt--;
      i++;
    } else if (c === ',' && inAlt > 0) {
      out += '|';
      i++;
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += RE2JS.quote(pattern[i + 1]!);
      i += 2;
    } else {
      out += RE2JS.quote(c);
      i++;
    }
  }
  if (inAlt > 0) throw builtinError('unexpected end of input');
  return `^${out}$`;
}
def('glob.match', 3, (args) => {
  const pattern = str(args, 0);
  const d = args[1];
  let delimiters: string[];
  if (d === null) delimiters = [];
  else if (Array.isArray(d)) {
    delimiters = d.map((x) => {
      if (typeof x !== 'string') throw typeError('operand 2 must be array of strings');
      return x;
    });
    if (delimiters.length === 0) delimiters = ['.'];
  } else throw operandError(1, 'array', d!);
  return re(globToRe(pattern, delimiters)).matcher(str(args, 2)).find();
});
def('glob.quote_meta', 1, (args) => str(args, 0).replace(/[*?\\[\]{}]/g, '\\$&'));
void RObject;
