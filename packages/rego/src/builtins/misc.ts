import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BigNum, equal, RObject, RSet, type Value } from '../value.ts';
import { builtinError, collection, def, int, obj, str, typeError } from './registry.ts';

// Semantic versions (semver 2.0.0)
const semverRe =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
function parseSemver(s: string, i: number) {
  const m = semverRe.exec(s);
  if (!m) throw builtinError(`operand ${i + 1}: string ${JSON.stringify(s)} is not a valid SemVer`);
  return { nums: [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!)], pre: m[4] ? m[4].split('.') : [] };
}
def('semver.is_valid', 1, ([v]) => typeof v === 'string' && semverRe.test(v));
def('semver.compare', 2, (args) => {
  const a = parseSemver(str(args, 0), 0);
  const b = parseSemver(str(args, 1), 1);
  for (let i = 0; i < 3; i++) if (a.nums[i] !== b.nums[i]) return a.nums[i]! < b.nums[i]! ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0)
    return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i]!;
    const y = b.pre[i]!;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return BigInt(x) < BigInt(y) ? -1 : 1;
    if (xn) return -1;
    if (yn) return 1;
    return x < y ? -1 : 1;
  }
  return a.pre.length === b.pre.length ? 0 : a.pre.length < b.pre.length ? -1 : 1;
});

// Units
const si: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e-3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Z: 1e21,
  Y: 1e24,
};
const iec: Record<string, number> = {
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
  pi: 2 ** 50,
  ei: 2 ** 60,
  zi: 2 ** 70,
  yi: 2 ** 80,
};
function splitUnit(s: string, name: string) {
  const t = s.replace(/"/g, '');
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)$/.exec(t);
  if (!m) {
    if (/\s/.test(t.trim())) throw builtinError(`${name}: spaces not allowed in resource strings`);
    throw builtinError(`${name}: could not parse amount to a number`);
  }
  return { n: Number(m[1]), unit: m[2]!, amount: m[1]! };
}
function toNumberExact(x: number): Value {
  return Number.isSafeInteger(x) || !Number.isInteger(x) ? x : new BigNum(BigInt(x));
}
def('units.parse_bytes', 1, (args) => {
  const s = str(args, 0);
  if (s === '') throw builtinError('units.parse_bytes: no byte amount provided');
  if (/\s/.test(s)) throw builtinError('units.parse_bytes: spaces not allowed in resource strings');
  const { n, unit } = splitUnit(s, 'units.parse_bytes');
  const u = unit.toLowerCase().replace(/b$/, '');
  let mult: number | undefined;
  if (u === '') mult = 1;
  else if (u in iec) mult = iec[u];
  else if (u.length === 1) mult = si[u.toUpperCase() === 'K' ? 'k' : u.toUpperCase()];
  if (mult === undefined) throw builtinError(`units.parse_bytes: byte unit ${unit} not recognized`);
  return toNumberExact(Math.trunc(n * mult));
});
/** Powers of ten of the SI prefixes units.parse reads (giga and up also in lower case, as OPA reads them). */
const siPowers: Record<string, number> = {
  '': 0,
  m: -3,
  k: 3,
  K: 3,
  M: 6,
  G: 9,
  g: 9,
  T: 12,
  t: 12,
  P: 15,
  p: 15,
  E: 18,
  e: 18,
  Z: 21,
  Y: 24,
};
def('units.parse', 1, (args) => {
  const s = str(args, 0);
  if (s === '') throw builtinError('units.parse: no amount provided');
  if (/\s/.test(s)) throw builtinError('units.parse: spaces not allowed in resource strings');
  const { n, unit, amount } = splitUnit(s, 'units.parse');
  const lower = unit.toLowerCase();
  if (lower in iec && unit.length === 2) {
    const r = n * iec[lower]!;
    return Number.isInteger(r) ? toNumberExact(r) : r;
  }
  const power = siPowers[unit];
  if (power === undefined) throw builtinError(`units.parse: unit ${unit} not recognized`);
  // Scaled in decimal, not by multiplying doubles: -3.5E2m is exactly -0.35.
  const [mantissa, exp = '0'] = amount.split(/[eE]/) as [string, string?];
  const r = Number(`${mantissa}e${Number(exp) + power}`);
  return Number.isInteger(r) ? toNumberExact(r) : r;
});

// Hashes and HMAC
const hashHex = (alg: string) => (args: Value[]) =>
  createHash(alg).update(str(args, 0), 'utf8').digest('hex');
def('crypto.md5', 1, hashHex('md5'));
def('crypto.sha1', 1, hashHex('sha1'));
def('crypto.sha256', 1, hashHex('sha256'));
const hmac = (alg: string) => (args: Value[]) =>
  createHmac(alg, str(args, 1)).update(str(args, 0), 'utf8').digest('hex');
def('crypto.hmac.md5', 2, hmac('md5'));
def('crypto.hmac.sha1', 2, hmac('sha1'));
def('crypto.hmac.sha256', 2, hmac('sha256'));
def('crypto.hmac.sha512', 2, hmac('sha512'));
def('crypto.hmac.equal', 2, (args) => {
  const a = Buffer.from(str(args, 0));
  const b = Buffer.from(str(args, 1));
  return a.length === b.length && timingSafeEqual(a, b);
});

// UUIDs
def('uuid.rfc4122', 1, (args, ctx) => {
  const key = `uuid:${str(args, 0)}`;
  let v = ctx.cache.get(key) as string | undefined;
  if (!v) {
    v = crypto.randomUUID();
    ctx.cache.set(key, v);
  }
  return v;
});
def('uuid.parse', 1, (args) => {
  const s = str(args, 0)
    .toLowerCase()
    .replace(/^urn:uuid:/, '')
    .replace(/^\{|\}$/g, '');
  const m = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/.exec(s);
  if (!m) return undefined;
  const hex = m.slice(1).join('');
  const version = Number.parseInt(hex[12]!, 16);
  const variantBits = Number.parseInt(hex[16]!, 16);
  const variant =
    (variantBits & 0x8) === 0
      ? 'Reserved, NCS backward compatibility'
      : (variantBits & 0xc) === 0x8
        ? 'RFC4122'
        : (variantBits & 0xe) === 0xc
          ? 'Reserved, Microsoft Corporation backward compatibility'
          : 'Reserved, reserved for future definition';
  const out = new RObject([
    ['version', version],
    ['variant', variant],
  ]);
  if (version === 1 || version === 2) {
    const t =
      (BigInt(`0x${hex.slice(13, 16)}`) << 48n) |
      (BigInt(`0x${hex.slice(8, 12)}`) << 32n) |
      BigInt(`0x${hex.slice(0, 8)}`);
    const unix100ns = t - 122192928000000000n;
    out.set('time', Number(unix100ns * 100n));
    out.set('clocksequence', Number.parseInt(hex.slice(16, 20), 16) & 0x3fff);
    out.set('nodeid', hex.slice(20).match(/../g)!.join('-'));
    out.set(
      'macvariables',
      (Number.parseInt(hex.slice(20, 22), 16) & 1) === 1 ? 'local:multicast' : 'global:unicast',
    );
    if (version === 2) {
      out.set('id', Number.parseInt(hex.slice(0, 8), 16));
      out.set('domain', ['Person', 'Group', 'Org'][Number.parseInt(hex.slice(18, 20), 16)] ?? 'Unknown');
    }
  }
  return out;
});

// Graphs
function neighbours(graph: RObject, node: Value): Value[] {
  const e = graph.get(node);
  if (e === undefined || e === null) return [];
  if (Array.isArray(e)) return e;
  if (e instanceof RSet) return e.values();
  return [];
}
def('graph.reachable', 2, (args) => {
  const g = obj(args, 0);
  const seen = new RSet();
  const queue = [...collection(args, 1, 'one of {set, array}')];
  while (queue.length) {
    const n = queue.shift()!;
    if (seen.has(n) || g.get(n) === undefined) continue;
    seen.add(n);
    queue.push(...neighbours(g, n));
  }
  return seen;
});
def('graph.reachable_paths', 2, (args) => {
  const g = obj(args, 0);
  const out = new RSet();
  const walk = (n: Value, path: Value[]) => {
    if (g.get(n) === undefined) {
      if (path.length) out.add(path);
      return;
    }
    const next = [...path, n];
    const ns = neighbours(g, n).filter((x) => !next.some((p) => equal(p, x)));
    if (ns.length === 0) out.add(next);
    for (const x of ns) walk(x, next);
  };
  for (const n of collection(args, 1, 'one of {set, array}')) walk(n, []);
  return out;
});

def('opa.runtime', 0, () => new RObject([['env', new RObject()]]));
def('trace', 1, (args) => {
  str(args, 0);
  return true;
});
def('rand.intn', 2, (args, ctx) => {
  const key = `rand:${str(args, 0)}:${int(args, 1)}`;
  let v = ctx.cache.get(key) as number | undefined;
  const n = int(args, 1);
  if (v === undefined) {
    v = n === 0 ? 0 : Math.floor(Math.random() * Math.abs(n));
    ctx.cache.set(key, v);
  }
  return v;
});
void typeError;
