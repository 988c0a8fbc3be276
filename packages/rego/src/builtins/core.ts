import { RegoError } from '../errors.ts';
import {
  BigNum,
  compare,
  equal,
  formatValue,
  isNumber,
  RObject,
  RSet,
  toBig,
  typeName,
  type Value,
} from '../value.ts';
import {
  arr,
  builtinError,
  builtins,
  checkSize,
  collection,
  def,
  int,
  num,
  obj,
  operandError,
  set,
  str,
  typeError,
} from './registry.ts';

// Comparison
def('equal', 2, ([a, b]) => equal(a!, b!));
def('neq', 2, ([a, b]) => !equal(a!, b!));
def('lt', 2, ([a, b]) => compare(a!, b!) < 0);
def('lte', 2, ([a, b]) => compare(a!, b!) <= 0);
def('gt', 2, ([a, b]) => compare(a!, b!) > 0);
def('gte', 2, ([a, b]) => compare(a!, b!) >= 0);

// Arithmetic keeps integers exact beyond 2^53 with BigInt, as OPA's big numbers do.
function normalize(b: bigint): Value {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(b)
    : new BigNum(b);
}
function arith(name: string, op: (a: number, b: number) => number, bop?: (a: bigint, b: bigint) => bigint) {
  def(name, 2, (args) => {
    const a = args[0]!;
    const b = args[1]!;
    if (!isNumber(a)) throw operandError(0, 'number', a);
    if (!isNumber(b)) throw operandError(1, 'number', b);
    if (bop) {
      const ab = toBig(a);
      const bb = toBig(b);
      if (ab !== null && bb !== null) {
        const r = op(Number(ab), Number(bb));
        if (!Number.isSafeInteger(r) || a instanceof BigNum || b instanceof BigNum)
          return normalize(bop(ab, bb));
      }
    }
    return op(typeof a === 'number' ? a : Number(a.big), typeof b === 'number' ? b : Number(b.big));
  });
}
arith(
  'plus',
  (a, b) => a + b,
  (a, b) => a + b,
);
arith(
  'mul',
  (a, b) => a * b,
  (a, b) => a * b,
);
def('minus', 2, (args) => {
  const [a, b] = args;
  if (a instanceof RSet || b instanceof RSet) {
    const x = set(args, 0);
    const y = set(args, 1);
    return new RSet(x.values().filter((v) => !y.has(v)));
  }
  if (!isNumber(a!)) throw typeError(`operand 1 must be one of {number, set} but got ${typeName(a!)}`);
  if (!isNumber(b!)) throw typeError(`operand 2 must be one of {number, set} but got ${typeName(b!)}`);
  const ab = toBig(a);
  const bb = toBig(b);
  if (
    ab !== null &&
    bb !== null &&
    (a instanceof BigNum || b instanceof BigNum || !Number.isSafeInteger(Number(ab) - Number(bb)))
  )
    return normalize(ab - bb);
  return (
    (typeof a === 'number' ? a : Number((a as BigNum).big)) -
    (typeof b === 'number' ? b : Number((b as BigNum).big))
  );
});
def('div', 2, (args) => {
  const a = num(args, 0);
  const b = num(args, 1);
  if (b === 0) throw builtinError('divide by zero');
  return a / b;
});
def('rem', 2, (args) => {
  const a = num(args, 0);
  const b = num(args, 1);
  if (!Number.isInteger(a) || !Number.isInteger(b)) throw builtinError('modulo on floating-point number');
  if (b === 0) throw builtinError('modulo by zero');
  const r = a % b;
  return Object.is(r, -0) ? 0 : r;
});
def('abs', 1, (args) => Math.abs(num(args, 0)));
def('round', 1, (args) => {
  const n = num(args, 0);
  return Math.sign(n) * Math.round(Math.abs(n));
});
def('ceil', 1, (args) => Math.ceil(num(args, 0)));
def('floor', 1, (args) => Math.floor(num(args, 0)));

function range(a: number, b: number, step: number, ctx: Parameters<Parameters<typeof def>[2]>[1]) {
  const n = Math.floor(Math.abs(b - a) / step) + 1;
  checkSize(n, ctx, 'numbers.range');
  const out: number[] = [];
  if (a <= b) for (let x = a; x <= b; x += step) out.push(x);
  else for (let x = a; x >= b; x -= step) out.push(x);
  return out;
}
def('numbers.range', 2, (args, ctx) => {
  const a = num(args, 0);
  const b = num(args, 1);
  if (!Number.isInteger(a)) throw operandError(0, 'integer', args[0]!);
  if (!Number.isInteger(b)) throw operandError(1, 'integer', args[1]!);
  return range(a, b, 1, ctx);
});
def('numbers.range_step', 3, (args, ctx) => {
  const a = num(args, 0);
  const b = num(args, 1);
  const s = num(args, 2);
  if (!Number.isInteger(a)) throw operandError(0, 'integer', args[0]!);
  if (!Number.isInteger(b)) throw operandError(1, 'integer', args[1]!);
  if (!Number.isInteger(s)) throw operandError(2, 'integer', args[2]!);
  if (s <= 0) throw builtinError('step must be a positive integer');
  return range(a, b, s, ctx);
});

// Sets
def('and', 2, (args) => {
  const a = set(args, 0);
  const b = set(args, 1);
  return new RSet(a.values().filter((v) => b.has(v)));
});
def('or', 2, (args) => new RSet([...set(args, 0).values(), ...set(args, 1).values()]));
def('intersection', 1, (args) => {
  const sets = set(args, 0).values();
  if (sets.length === 0) return new RSet();
  for (const s of sets) if (!(s instanceof RSet)) throw typeError('operand 1 must be set of sets');
  const [first, ...rest] = sets as RSet[];
  return new RSet(first!.values().filter((v) => rest.every((r) => r.has(v))));
});
def('union', 1, (args) => {
  const out = new RSet();
  for (const s of set(args, 0).values()) {
    if (!(s instanceof RSet)) throw typeError('operand 1 must be set of sets');
    for (const v of s.values()) out.add(v);
  }
  return out;
});

// Aggregates
def('count', 1, (args) => {
  const v = args[0]!;
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof RSet || v instanceof RObject) return v.size;
  throw typeError(`operand 1 must be one of {array, object, set, string} but got ${typeName(v)}`);
});
function numbers(args: Value[], name: string): Value[] {
  const items = collection(args, 0);
  for (const x of items)
    if (!isNumber(x))
      throw typeError(`operand 1 must be one of {array, set} of numbers; ${name} got ${typeName(x)}`);
  return items;
}
def('sum', 1, (args) => {
  const items = numbers(args, 'sum');
  let big = 0n;
  let allInt = true;
  let f = 0;
  for (const x of items) {
    const b = toBig(x as number);
    if (b === null) allInt = false;
    else big += b;
    f += typeof x === 'number' ? x : Number((x as BigNum).big);
  }
  return allInt ? normalize(big) : f;
});
def('product', 1, (args) => {
  const items = numbers(args, 'product');
  let p = 1;
  for (const x of items) p *= typeof x === 'number' ? x : Number((x as BigNum).big);
  return p;
});
def('max', 1, (args) => {
  const items = collection(args, 0);
  return items.length === 0 ? undefined : items.reduce((a, b) => (compare(a, b) >= 0 ? a : b));
});
def('min', 1, (args) => {
  const items = collection(args, 0);
  return items.length === 0 ? undefined : items.reduce((a, b) => (compare(a, b) <= 0 ? a : b));
});
def('sort', 1, (args) => [...collection(args, 0)].sort(compare));
def('all', 1, (args) => collection(args, 0).every((v) => v === true));
def('any', 1, (args) => collection(args, 0).some((v) => v === true));

// Membership (`x in xs`, `k, v in xs`)
def('internal.member_2', 2, ([x, coll]) => {
  if (Array.isArray(coll)) return coll.some((v) => equal(v, x!));
  if (coll instanceof RSet) return coll.has(x!);
  if (coll instanceof RObject) return coll.entries().some(([, v]) => equal(v, x!));
  return false;
});
def('internal.member_3', 3, ([key, val, coll]) => {
  if (Array.isArray(coll))
    return (
      typeof key === 'number' &&
      Number.isInteger(key) &&
      key >= 0 &&
      key < coll.length &&
      equal(coll[key]!, val!)
    );
  if (coll instanceof RObject) {
    const v = coll.get(key!);
    return v !== undefined && equal(v, val!);
  }
  if (coll instanceof RSet) return coll.has(key!) && equal(key!, val!);
  return false;
});

// Types
def('is_number', 1, ([v]) => isNumber(v!));
def('is_string', 1, ([v]) => typeof v === 'string');
def('is_boolean', 1, ([v]) => typeof v === 'boolean');
def('is_array', 1, ([v]) => Array.isArray(v));
def('is_set', 1, ([v]) => v instanceof RSet);
def('is_object', 1, ([v]) => v instanceof RObject);
def('is_null', 1, ([v]) => v === null);
def('type_name', 1, ([v]) => typeName(v!));

def('to_number', 1, (args) => {
  const v = args[0]!;
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (isNumber(v)) return v;
  if (typeof v === 'string') {
    const t = v.trim();
    // Go's ParseFloat reads these, and OPA refuses them as not numbers.
    if (/^[+-]?(inf|infinity|nan)$/i.test(t))
      throw typeError(`to_number: invalid syntax: "${v}" is not a number`);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t))
      throw builtinError(`invalid syntax: could not convert "${v}" to number`);
    if (/^[+-]?\d+$/.test(t) && !Number.isSafeInteger(Number(t))) return new BigNum(BigInt(t));
    return Number(t);
  }
  throw operandError(0, 'one of {boolean, null, number, string}', v);
});
def('cast_array', 1, (args) => {
  const v = args[0]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.sorted();
  throw operandError(0, 'array', v);
});
def('cast_set', 1, (args) => {
  const v = args[0]!;
  if (v instanceof RSet) return v;
  if (Array.isArray(v)) return new RSet(v);
  throw operandError(0, 'set', v);
});
def('cast_string', 1, (args) => str(args, 0));
def('cast_boolean', 1, (args) => {
  if (typeof args[0] !== 'boolean') throw operandError(0, 'boolean', args[0]!);
  return args[0];
});
def('cast_null', 1, (args) => {
  if (args[0] !== null) throw operandError(0, 'null', args[0]!);
  return null;
});
def('cast_object', 1, (args) => obj(args, 0));

def('set', 0, () => new RSet());

// Arrays
def('array.flatten', 1, (args) => {
  const out: Value[] = [];
  const walk = (a: Value[]) => {
    for (const x of a) Array.isArray(x) ? walk(x) : out.push(x);
  };
  walk(arr(args, 0));
  return out;
});
def('array.concat', 2, (args) => [...arr(args, 0), ...arr(args, 1)]);
def('array.slice', 3, (args) => {
  const a = arr(args, 0);
  let start = int(args, 1);
  let stop = int(args, 2);
  if (start < 0) start = 0;
  if (stop > a.length) stop = a.length;
  if (start >= stop) return [];
  return a.slice(start, stop);
});
def('array.reverse', 1, (args) => [...arr(args, 0)].reverse());

// Bits
const bigOf = (args: Value[], i: number) => {
  const v = args[i]!;
  if (!isNumber(v)) throw operandError(i, 'number', v);
  const b = toBig(v);
  if (b === null) throw operandError(i, 'integer', v);
  return b;
};
def('bits.and', 2, (args) => normalize(bigOf(args, 0) & bigOf(args, 1)));
def('bits.or', 2, (args) => normalize(bigOf(args, 0) | bigOf(args, 1)));
def('bits.xor', 2, (args) => normalize(bigOf(args, 0) ^ bigOf(args, 1)));
def('bits.negate', 1, (args) => normalize(~bigOf(args, 0)));
def('bits.lsh', 2, (args) => {
  const s = bigOf(args, 1);
  if (s < 0n) throw typeError('operand 2 must be an unsigned integer number but got a negative integer');
  return normalize(bigOf(args, 0) << s);
});
def('bits.rsh', 2, (args) => {
  const s = bigOf(args, 1);
  if (s < 0n) throw typeError('operand 2 must be an unsigned integer number but got a negative integer');
  return normalize(bigOf(args, 0) >> s);
});

// print and walk control their own evaluation.
builtins.set('print', {
  arity: -1,
  fn: () => true,
  special(ev, t, k) {
    const parts: string[] = [];
    const step = (i: number): boolean => {
      if (i === t.args.length) {
        ev.builtinCtx.print(parts.join(' '));
        return false;
      }
      let found = false;
      const stop = ev.evalTerm(t.args[i]!, (v) => {
        found = true;
        parts.push(typeof v === 'string' ? v : formatValue(v));
        const s = step(i + 1);
        parts.pop();
        return s;
      });
      if (!found) {
        parts.push('<undefined>');
        const s = step(i + 1);
        parts.pop();
        return s;
      }
      return stop;
    };
    step(0);
    return Boolean(k(true));
  },
});

function walkValue(v: Value, path: Value[], out: [Value[], Value][]) {
  out.push([path, v]);
  if (Array.isArray(v)) v.forEach((x, i) => walkValue(x, [...path, i], out));
  else if (v instanceof RObject) for (const [kk, vv] of v.sortedEntries()) walkValue(vv, [...path, kk], out);
  else if (v instanceof RSet) for (const x of v.sorted()) walkValue(x, [...path, x], out);
}
builtins.set('walk', {
  arity: 1,
  fn: () => undefined,
  special(ev, t, k) {
    if (t.args.length !== 2 && t.args.length !== 1)
      throw new RegoError('rego_type_error', 'walk: arity mismatch', t.loc);
    return ev.evalTerm(t.args[0]!, (root) => {
      const out: [Value[], Value][] = [];
      walkValue(root, [], out);
      if (t.args.length === 1) return k(true);
      for (const [p, v] of out) {
        const stop = ev.matchScoped(t.args[1]!, [p, v], () => k(true));
        if (stop) return true;
      }
      return false;
    });
  },
});
