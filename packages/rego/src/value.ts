/**
 * Rego values. Scalars and arrays are plain JS values; objects and sets are keyed by a canonical
 * string so any value can be a key or member, as in OPA.
 */
export type Value = null | boolean | number | string | BigNum | Value[] | RObject | RSet;

/** An integer too large for a double, kept exactly as OPA keeps big JSON numbers. */
export class BigNum {
  readonly big: bigint;
  constructor(big: bigint) {
    this.big = big;
  }
}

let keyCache = new WeakMap<object, string>();

/** A canonical string for any value: equal values (by Rego equality) have equal keys. */
export function keyOf(v: Value): string {
  switch (typeof v) {
    case 'string':
      return v.charCodeAt(0) < 32 ? `\u0001${v}` : v;
    case 'number':
      return `\u0002${Object.is(v, -0) ? 0 : v}`;
    case 'boolean':
      return v ? '\u0003t' : '\u0003f';
    case 'object': {
      if (v === null) return '\u0004';
      const cached = keyCache.get(v);
      if (cached) return cached;
      let k: string;
      if (v instanceof BigNum) k = `\u0002${v.big}`;
      else if (Array.isArray(v)) k = `\u0005[${v.map(keyOf).join('\u0000')}]`;
      else if (v instanceof RSet) k = `\u0006{${[...v.map.keys()].sort().join('\u0000')}}`;
      else
        k = `\u0007{${[...v.vals.entries()]
          .map(([kk, vv]) => `${kk}\u0008${keyOf(vv)}`)
          .sort()
          .join('\u0000')}}`;
      keyCache.set(v, k);
      return k;
    }
  }
  throw new Error('not a value');
}

/** Forget cached keys (only needed if values were mutated during construction). */
export function resetKeyCache() {
  keyCache = new WeakMap();
}

export class RObject {
  /** Values by canonical key, made on first use. For plain string keys the canonical key is the string itself. */
  private converted: Map<string, Value> | null = null;
  /** The original keys that are not plain strings, by canonical key. */
  private others: Map<string, Value> | null = null;
  /** A JSON object not yet converted: input documents are converted only as far as a policy reads them. */
  private plain: Record<string, unknown> | null = null;
  constructor(entries?: Iterable<[Value, Value]>) {
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }
  /** Wraps parsed JSON; members are converted on first access. */
  static fromPlain(plain: Record<string, unknown>): RObject {
    const o = new RObject();
    o.plain = plain;
    return o;
  }
  /** Every entry, converted. */
  get vals(): Map<string, Value> {
    this.converted ??= new Map();
    if (this.plain) {
      const plain = this.plain;
      this.plain = null;
      for (const k in plain) {
        const v = plain[k];
        if (v === undefined) continue;
        const key = keyOf(k);
        if (!this.converted.has(key)) this.setKey(key, k, fromJSON(v));
      }
    }
    return this.converted;
  }
  get(k: Value): Value | undefined {
    const key = keyOf(k);
    const v = this.converted?.get(key);
    if (v !== undefined || !this.plain || typeof k !== 'string') return v;
    const raw = this.plain[k];
    if (raw === undefined || !Object.hasOwn(this.plain, k)) return undefined;
    // A JSON scalar is its own value: read it where it is. Objects and arrays are converted once and kept.
    if (raw === null || typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean')
      return raw;
    const value = fromJSON(raw);
    this.setKey(key, k, value);
    return value;
  }
  private setKey(key: string, k: Value, v: Value) {
    if (key !== k) {
      this.others ??= new Map();
      this.others.set(key, k);
    }
    this.converted ??= new Map();
    this.converted.set(key, v);
  }
  /** Only while building a new object: values are immutable once shared. */
  set(k: Value, v: Value) {
    const vals = this.vals;
    const key = keyOf(k);
    if (key !== k) {
      this.others ??= new Map();
      this.others.set(key, k);
    }
    vals.set(key, v);
  }
  delete(k: Value) {
    const key = keyOf(k);
    this.vals.delete(key);
    this.others?.delete(key);
  }
  has(k: Value) {
    return this.get(k) !== undefined;
  }
  get size() {
    return this.vals.size;
  }
  /** The original key for a canonical key. */
  keyFor(canonical: string): Value {
    return this.others?.get(canonical) ?? canonical;
  }
  keys(): Value[] {
    return [...this.vals.keys()].map((c) => this.keyFor(c));
  }
  entries(): [Value, Value][] {
    return [...this.vals.entries()].map(([c, v]) => [this.keyFor(c), v]);
  }
  /** Calls fn for each entry; stops and returns true when fn does. */
  some(fn: (k: Value, v: Value) => boolean | undefined | void): boolean {
    for (const [c, v] of this.vals) if (fn(this.others?.get(c) ?? c, v)) return true;
    return false;
  }
  /** Entries in OPA's key order. */
  sortedEntries(): [Value, Value][] {
    return this.entries().sort((a, b) => compare(a[0], b[0]));
  }
}

export class RSet {
  readonly map: Map<string, Value>;
  constructor(items?: Iterable<Value>) {
    this.map = new Map();
    if (items) for (const v of items) this.map.set(keyOf(v), v);
  }
  add(v: Value) {
    this.map.set(keyOf(v), v);
  }
  has(v: Value) {
    return this.map.has(keyOf(v));
  }
  get size() {
    return this.map.size;
  }
  values(): Value[] {
    return [...this.map.values()];
  }
  sorted(): Value[] {
    return this.values().sort(compare);
  }
}

/** The type name OPA reports: null, boolean, number, string, array, object, set. */
export function typeName(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number' || v instanceof BigNum) return 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  if (v instanceof RSet) return 'set';
  return 'object';
}

const order: Record<string, number> = {
  null: 0,
  boolean: 1,
  number: 2,
  string: 3,
  array: 6,
  object: 7,
  set: 8,
};

export const isNumber = (v: Value): v is number | BigNum => typeof v === 'number' || v instanceof BigNum;

export function toBig(v: number | BigNum): bigint | null {
  if (v instanceof BigNum) return v.big;
  return Number.isInteger(v) ? BigInt(v) : null;
}

function compareNumbers(a: number | BigNum, b: number | BigNum): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const ab = toBig(a);
  const bb = toBig(b);
  if (ab !== null && bb !== null) return ab < bb ? -1 : ab > bb ? 1 : 0;
  const an = typeof a === 'number' ? a : Number(a.big);
  const bn = typeof b === 'number' ? b : Number(b.big);
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** OPA's total order over values. */
export function compare(a: Value, b: Value): number {
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta !== tb) return order[ta]! - order[tb]!;
  switch (ta) {
    case 'null':
      return 0;
    case 'boolean':
      return a === b ? 0 : a ? 1 : -1;
    case 'number':
      return compareNumbers(a as number, b as number);
    case 'string':
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    case 'array': {
      const x = a as Value[];
      const y = b as Value[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 'set': {
      const x = (a as RSet).sorted();
      const y = (b as RSet).sorted();
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    default: {
      const x = (a as RObject).sortedEntries();
      const y = (b as RObject).sortedEntries();
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const ck = compare(x[i]![0], y[i]![0]);
        if (ck !== 0) return ck;
        const cv = compare(x[i]![1], y[i]![1]);
        if (cv !== 0) return cv;
      }
      return x.length - y.length;
    }
  }
}

export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    if (isNumber(a) && isNumber(b)) return compareNumbers(a, b) === 0;
    return false;
  }
  return keyOf(a) === keyOf(b);
}

/** Converts parsed JSON to a value (objects become RObject, big integers BigNum). */
export function fromJSON(j: unknown): Value {
  if (j === null || typeof j === 'boolean' || typeof j === 'string') return j;
  if (typeof j === 'number') return j;
  if (typeof j === 'bigint') return new BigNum(j);
  if (Array.isArray(j)) {
    // Arrays of scalars are shared as they are: values are never mutated.
    let out: Value[] | null = null;
    for (let i = 0; i < j.length; i++) {
      const item = j[i];
      const c = fromJSON(item);
      if (out) out.push(c);
      else if (c !== item) {
        out = j.slice(0, i) as Value[];
        out.push(c);
      }
    }
    return out ?? (j as Value[]);
  }
  if (j instanceof RObject || j instanceof RSet || j instanceof BigNum) return j;
  if (typeof j === 'object') {
    // Plain JSON objects are converted member by member as a policy reads them: a decision that reads
    // three fields of a large input pays for three fields.
    const proto = Object.getPrototypeOf(j);
    if (proto === Object.prototype || proto === null) return RObject.fromPlain(j as Record<string, unknown>);
    const o = new RObject();
    for (const [k, v] of Object.entries(j as Record<string, unknown>))
      if (v !== undefined) o.set(k, fromJSON(v));
    return o;
  }
  throw new Error(`cannot convert ${typeof j} to a Rego value`);
}

/** Converts a value to JSON as OPA serializes it: sets become sorted arrays, keys become strings. */
export function toJSON(v: Value): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof BigNum) return Number(v.big);
  if (Array.isArray(v)) return v.map(toJSON);
  if (v instanceof RSet) return v.sorted().map(toJSON);
  const out: Record<string, unknown> = {};
  for (const [k, val] of v.sortedEntries())
    out[typeof k === 'string' ? k : JSON.stringify(toJSON(k))] = toJSON(val);
  return out;
}

/** JSON text of a value in OPA's form (used by sprintf %v, json.marshal, template strings). */
export function formatValue(v: Value): string {
  if (v instanceof RSet) return `{${v.sorted().map(formatValue).join(', ')}}`;
  if (v instanceof RObject)
    return `{${v
      .sortedEntries()
      .map(([k, val]) => `${formatValue(k)}: ${formatValue(val)}`)
      .join(', ')}}`;
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`;
  if (v instanceof BigNum) return v.big.toString();
  if (typeof v === 'number') return formatNumber(v);
  return JSON.stringify(v);
}

/** Numbers as Go's JSON encoder writes them: integers without exponent, others shortest. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return BigInt(n).toString();
  const s = String(n);
  if (s.includes('e')) {
    const [m, e] = s.split('e');
    const exp = Number(e);
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return s;
}
