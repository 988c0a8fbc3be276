import { BigNum, RObject, type Value } from '../value.ts';
import { arr, builtinError, def, int, num, str } from './registry.ts';

def('time.now_ns', 0, (_args, ctx) => normalizeBig(ctx.now));

function normalizeBig(b: bigint): Value {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(b)
    : new BigNum(b);
}

const minNs = -(2n ** 63n);
const maxNs = 2n ** 63n - 1n;

/** A time in nanoseconds, which must fit in a signed 64-bit integer as OPA's times do. */
function nsOf(v: Value, i: number): bigint {
  let ns: bigint;
  if (v instanceof BigNum) ns = v.big;
  else if (typeof v === 'number' && Number.isFinite(v)) ns = BigInt(Math.trunc(v));
  else throw builtinError(`operand ${i + 1} must be number`);
  if (ns < minNs || ns > maxNs) throw builtinError('timestamp too big');
  return ns;
}

/** A computed time, refused when it does not fit in a signed 64-bit integer of nanoseconds. */
function inRange(ns: bigint): Value {
  if (ns < minNs || ns > maxNs) throw builtinError('time outside of valid range');
  return normalizeBig(ns);
}

/** RFC 3339 with optional fractional seconds, as nanoseconds since the epoch. */
function parseRfc3339(s: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw builtinError(`parsing time "${s}" as "2006-01-02T15:04:05Z07:00": cannot parse`);
  const [, y, mo, d, h, mi, se, frac, tz] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  if (
    Number.isNaN(ms) ||
    Number(mo) > 12 ||
    Number(d) > 31 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(se) > 59
  )
    throw builtinError(`parsing time "${s}": out of range`);
  let ns = BigInt(ms) * 1_000_000n;
  if (frac) ns += BigInt(frac.slice(1).padEnd(9, '0'));
  if (tz && tz !== 'Z' && tz !== 'z') {
    const sign = tz[0] === '-' ? -1n : 1n;
    const offset = (BigInt(Number(tz.slice(1, 3))) * 60n + BigInt(Number(tz.slice(4, 6)))) * 60_000_000_000n;
    ns -= sign * offset;
  }
  return ns;
}
def('time.parse_rfc3339_ns', 1, (args) => inRange(parseRfc3339(str(args, 0))));

const layouts: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
  DateTime: '2006-01-02 15:04:05',
  DateOnly: '2006-01-02',
  TimeOnly: '15:04:05',
};
const monthsShort = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const monthsLong = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const daysShort = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const daysLong = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Go layout parsing for the common elements. */
function parseLayout(layout: string, value: string): bigint {
  const l = layouts[layout] ?? layout;
  if (l === layouts.RFC3339 || l === layouts.RFC3339Nano) return parseRfc3339(value);
  const tokens = [
    '2006',
    '01',
    '02',
    '15',
    '04',
    '05',
    'Jan',
    'January',
    'Mon',
    'Monday',
    '_2',
    '-0700',
    '-07:00',
    'Z07:00',
    'MST',
    '.000',
    '.999999999',
    '06',
    'PM',
    '1',
    '2',
    '3',
  ];
  let re = '';
  const fields: string[] = [];
  let i = 0;
  while (i < l.length) {
    const t = tokens.filter((x) => l.startsWith(x, i)).sort((a, b) => b.length - a.length)[0];
    if (!t) {
      re += l[i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
      continue;
    }
    fields.push(t);
    const pat: Record<string, string> = {
      '2006': '(\\d{4})',
      '01': '(\\d{2})',
      '02': '(\\d{2})',
      '15': '(\\d{2})',
      '04': '(\\d{2})',
      '05': '(\\d{2})',
      Jan: '([A-Za-z]{3})',
      January: '([A-Za-z]+)',
      Mon: '([A-Za-z]{3})',
      Monday: '([A-Za-z]+)',
      _2: '( ?\\d{1,2})',
      '-0700': '([+-]\\d{4})',
      '-07:00': '([+-]\\d{2}:\\d{2})',
      'Z07:00': '(Z|[+-]\\d{2}:\\d{2})',
      MST: '([A-Z]{3,4})',
      '.000': '(\\.\\d+)',
      '.999999999': '(\\.\\d+)?',
      '06': '(\\d{2})',
      PM: '(AM|PM)',
      '1': '(\\d{1,2})',
      '2': '(\\d{1,2})',
      '3': '(\\d{1,2})',
    };
    re += pat[t];
    i += t.length;
  }
  const m = new RegExp(`^${re}$`).exec(value);
  if (!m) throw builtinError(`parsing time "${value}" as "${l}": cannot parse`);
  let y = 1970,
    mo = 1,
    d = 1,
    h = 0,
    mi = 0,
    s = 0,
    frac = 0n,
    offsetMin = 0,
    pm: string | null = null;
  fields.forEach((f, idx) => {
    const v = m[idx + 1];
    if (v === undefined) return;
    switch (f) {
      case '2006':
        y = Number(v);
        break;
      case '06':
        y = 2000 + Number(v);
        break;
      case '01':
      case '1':
        mo = Number(v);
        break;
      case 'Jan':
        mo = monthsShort.indexOf(v) + 1;
        break;
      case 'January':
        mo = monthsLong.indexOf(v) + 1;
        break;
      case '02':
      case '_2':
      case '2':
        d = Number(v.trim());
        break;
      case '15':
      case '3':
        h = Number(v);
        break;
      case '04':
        mi = Number(v);
        break;
      case '05':
        s = Number(v);
        break;
      case '.000':
      case '.999999999':
        frac = BigInt(v.slice(1).padEnd(9, '0').slice(0, 9));
        break;
      case '-0700':
        offsetMin = (v[0] === '-' ? -1 : 1) * (Number(v.slice(1, 3)) * 60 + Number(v.slice(3, 5)));
        break;
      case '-07:00':
      case 'Z07:00':
        offsetMin =
          v === 'Z' ? 0 : (v[0] === '-' ? -1 : 1) * (Number(v.slice(1, 3)) * 60 + Number(v.slice(4, 6)));
        break;
      case 'PM':
        pm = v;
        break;
    }
  });
  if (pm === 'PM' && h < 12) h += 12;
  if (pm === 'AM' && h === 12) h = 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
    throw builtinError(`parsing time "${value}": out of range`);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s) - offsetMin * 60_000;
  return BigInt(ms) * 1_000_000n + frac;
}
def('time.parse_ns', 2, (args) => inRange(parseLayout(str(args, 0), str(args, 1))));

const durationUnits: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  μs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
def('time.parse_duration_ns', 1, (args) => {
  const s = str(args, 0);
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(s);
  if (!m && s !== '0') throw builtinError(`time: invalid duration "${s}"`);
  if (s === '0') return 0;
  const sign = s.startsWith('-') ? -1 : 1;
  let total = 0;
  for (const part of s.replace(/^[+-]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * Number(durationUnits[part[2]!]);
  }
  return sign * Math.round(total);
});

function dateParts(args: Value[]): { date: Date; offsetMs: number } {
  const v = args[0]!;
  let ns: bigint;
  let tz = 'UTC';
  if (Array.isArray(v)) {
    ns = nsOf(v[0]!, 0);
    if (typeof v[1] === 'string') tz = v[1];
  } else ns = nsOf(v, 0);
  const ms = Number(ns / 1_000_000n);
  let offsetMs = 0;
  if (tz !== 'UTC' && tz !== '' && tz !== 'Local') {
    try {
      const fmt = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
      const name = fmt.formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
      const mm = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
      if (mm) offsetMs = (mm[1] === '-' ? -1 : 1) * (Number(mm[2]) * 60 + Number(mm[3])) * 60_000;
    } catch {
      throw builtinError(`unknown time zone ${tz}`);
    }
  }
  return { date: new Date(ms + offsetMs), offsetMs };
}
def('time.date', 1, (args) => {
  const { date } = dateParts(args);
  return [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
});
def('time.clock', 1, (args) => {
  const { date } = dateParts(args);
  return [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()];
});
def('time.weekday', 1, (args) => daysLong[dateParts(args).date.getUTCDay()]!);
def('time.add_date', 4, (args) => {
  const ns = nsOf(args[0]!, 0);
  const ms = Number(ns / 1_000_000n);
  const rem = ns % 1_000_000n;
  const d = new Date(ms);
  const out = Date.UTC(
    d.getUTCFullYear() + int(args, 1),
    d.getUTCMonth() + int(args, 2),
    d.getUTCDate() + int(args, 3),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
  if (!Number.isFinite(out)) throw builtinError('time outside of valid range');
  return inRange(BigInt(out) * 1_000_000n + rem);
});
def('time.diff', 2, (args) => {
  // Both times are read in the first one's zone, as OPA does.
  const first = args[0]!;
  const zone = Array.isArray(first) && typeof first[1] === 'string' ? first[1] : 'UTC';
  const second = args[1]!;
  const a = dateParts([first]).date;
  const b = dateParts([[Array.isArray(second) ? second[0]! : second, zone]]).date;
  const [x, y] = a <= b ? [a, b] : [b, a];
  let years = y.getUTCFullYear() - x.getUTCFullYear();
  let months = y.getUTCMonth() - x.getUTCMonth();
  let days = y.getUTCDate() - x.getUTCDate();
  let hours = y.getUTCHours() - x.getUTCHours();
  let minutes = y.getUTCMinutes() - x.getUTCMinutes();
  let seconds = y.getUTCSeconds() - x.getUTCSeconds();
  if (seconds < 0) {
    seconds += 60;
    minutes--;
  }
  if (minutes < 0) {
    minutes += 60;
    hours--;
  }
  if (hours < 0) {
    hours += 24;
    days--;
  }
  if (days < 0) {
    // The days of the earlier time's month, as Go's date arithmetic counts them.
    days += new Date(Date.UTC(x.getUTCFullYear(), x.getUTCMonth() + 1, 0)).getUTCDate();
    months--;
  }
  if (months < 0) {
    months += 12;
    years--;
  }
  return [years, months, days, hours, minutes, seconds];
});
function goFormatTime(date: Date, layout: string, nanos: bigint, offsetMs: number): string {
  const l = layouts[layout] ?? layout;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = offsetMs / 60_000;
  const offStr = (colon: boolean, z: boolean) =>
    z && off === 0
      ? 'Z'
      : `${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}${colon ? ':' : ''}${pad(Math.abs(off) % 60)}`;
  const reps: [string, () => string][] = [
    ['2006', () => pad(date.getUTCFullYear(), 4)],
    ['January', () => monthsLong[date.getUTCMonth()]!],
    ['Jan', () => monthsShort[date.getUTCMonth()]!],
    ['Monday', () => daysLong[date.getUTCDay()]!],
    ['Mon', () => daysShort[date.getUTCDay()]!],
    ['MST', () => (off === 0 ? 'UTC' : offStr(false, false))],
    [
      '.999999999',
      () => {
        const f = nanos.toString().padStart(9, '0').replace(/0+$/, '');
        return f ? `.${f}` : '';
      },
    ],
    ['.000', () => `.${nanos.toString().padStart(9, '0').slice(0, 3)}`],
    ['Z07:00', () => offStr(true, true)],
    ['-07:00', () => offStr(true, false)],
    ['-0700', () => offStr(false, false)],
    ['01', () => pad(date.getUTCMonth() + 1)],
    ['02', () => pad(date.getUTCDate())],
    ['_2', () => String(date.getUTCDate()).padStart(2, ' ')],
    ['15', () => pad(date.getUTCHours())],
    ['04', () => pad(date.getUTCMinutes())],
    ['05', () => pad(date.getUTCSeconds())],
    ['06', () => pad(date.getUTCFullYear() % 100)],
    ['PM', () => (date.getUTCHours() >= 12 ? 'PM' : 'AM')],
  ];
  let out = '';
  let i = 0;
  while (i < l.length) {
    const r = reps.find(([t]) => l.startsWith(t, i));
    if (r) {
      out += r[1]();
      i += r[0].length;
    } else {
      out += l[i];
      i++;
    }
  }
  return out;
}
def('time.format', 1, (args) => {
  const v = args[0]!;
  let layout = layouts.RFC3339Nano!;
  if (Array.isArray(v) && typeof v[2] === 'string') layout = v[2];
  const ns = nsOf(Array.isArray(v) ? v[0]! : v, 0);
  const { date, offsetMs } = dateParts(Array.isArray(v) ? [[v[0]!, v[1] ?? 'UTC']] : [v]);
  return goFormatTime(date, layout, ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n, offsetMs);
});
void arr;
void num;
void RObject;
