import { RObject, RSet, type Value } from '../value.ts';
import { builtinError, collection, def, str, typeError } from './registry.ts';

type Net = { v6: boolean; addr: bigint; bits: number };

function parseIPv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(Number(p));
  }
  return n;
}
function parseIPv6(s: string): bigint | null {
  let str6 = s;
  let tail4: bigint | null = null;
  const lastColon = str6.lastIndexOf(':');
  if (str6.includes('.') && lastColon >= 0) {
    tail4 = parseIPv4(str6.slice(lastColon + 1));
    if (tail4 === null) return null;
    str6 = `${str6.slice(0, lastColon + 1)}0:0`;
  }
  const halves = str6.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 && missing !== 0) return null;
  if (missing < 0) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tail4 !== null) n = (n & ~0xffffffffn) | tail4;
  return n;
}
function parseIP(s: string): Net | null {
  if (s.includes(':')) {
    const a = parseIPv6(s);
    return a === null ? null : { v6: true, addr: a, bits: 128 };
  }
  const a = parseIPv4(s);
  return a === null ? null : { v6: false, addr: a, bits: 32 };
}
function parseCIDR(s: string, allowIP = false): Net | null {
  const slash = s.indexOf('/');
  if (slash < 0) return allowIP ? parseIP(s) : null;
  const ip = parseIP(s.slice(0, slash));
  const bitsStr = s.slice(slash + 1);
  if (!ip || !/^\d+$/.test(bitsStr)) return null;
  const bits = Number(bitsStr);
  const width = ip.v6 ? 128 : 32;
  if (bits > width) return null;
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - bits)) - 1n);
  return { v6: ip.v6, addr: ip.addr & mask, bits };
}
const width = (n: Net) => (n.v6 ? 128 : 32);
const lastOf = (n: Net) => n.addr | ((1n << BigInt(width(n) - n.bits)) - 1n);
function cidr(args: Value[], i: number, allowIP: boolean): Net {
  const s = str(args, i);
  const n = parseCIDR(s, allowIP);
  if (!n) throw builtinError(`invalid CIDR address: ${s}`);
  return n;
}
def('net.cidr_contains', 2, (args) => {
  const a = cidr(args, 0, false);
  const b = cidr(args, 1, true);
  if (a.v6 !== b.v6) return false;
  return b.addr >= a.addr && lastOf(b) <= lastOf(a);
});
def('net.cidr_intersects', 2, (args) => {
  const a = cidr(args, 0, false);
  const b = cidr(args, 1, false);
  if (a.v6 !== b.v6) return false;
  return a.addr <= lastOf(b) && b.addr <= lastOf(a);
});
def('net.cidr_is_valid', 1, ([v]) => typeof v === 'string' && parseCIDR(v) !== null);
function fmtIP(addr: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((addr >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((addr >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Collapse the longest run of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
def('net.cidr_expand', 1, (args, ctx) => {
  const n = cidr(args, 0, false);
  const count = 1n << BigInt(width(n) - n.bits);
  if (count > BigInt(ctx.maxCollection))
    throw builtinError(`!net.cidr_expand would produce ${count} addresses`);
  const out = new RSet();
  for (let a = n.addr; a <= lastOf(n); a++) out.add(fmtIP(a, n.v6));
  return out;
});
def('net.cidr_merge', 1, (args) => {
  const items = collection(args, 0, 'one of {array, set}');
  const nets: Net[] = [];
  for (const it of items) {
    if (typeof it !== 'string') throw typeError('operand 1 must be set of strings');
    const n = parseCIDR(it, true);
    if (!n) throw builtinError(`IPv${it.includes(':') ? 6 : 4} invalid: needs prefix length`);
    nets.push(n);
  }
  const merge = (list: Net[]) => {
    list.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.bits - b.bits));
    const out: Net[] = [];
    for (const n of list) {
      const last = out[out.length - 1];
      if (last && n.addr >= last.addr && lastOf(n) <= lastOf(last)) continue;
      out.push(n);
    }
    // Join adjacent siblings repeatedly.
    let changed = true;
    while (changed) {
      changed = false;
      for (let i = 0; i + 1 < out.length; i++) {
        const a = out[i]!;
        const b = out[i + 1]!;
        if (a.bits === b.bits && a.bits > 0) {
          const parentBits = a.bits - 1;
          const size = 1n << BigInt(width(a) - parentBits);
          if (a.addr % size === 0n && b.addr === a.addr + size / 2n) {
            out.splice(i, 2, { v6: a.v6, addr: a.addr, bits: parentBits });
            changed = true;
            break;
          }
        }
      }
    }
    return out;
  };
  const v4 = merge(nets.filter((n) => !n.v6));
  const v6 = merge(nets.filter((n) => n.v6));
  return new RSet([...v4, ...v6].map((n) => `${fmtIP(n.addr, n.v6)}/${n.bits}`));
});
def('net.cidr_contains_matches', 2, (args) => {
  const toPairs = (v: Value, i: number): [Value, string][] => {
    if (typeof v === 'string') return [[v, v]];
    const pairs: [Value, string][] = [];
    const add = (k: Value, x: Value) => {
      if (typeof x === 'string') pairs.push([k, x]);
      else if (Array.isArray(x) && typeof x[0] === 'string') pairs.push([k, x[0]]);
      else throw typeError(`operand ${i + 1} must be string, array of strings or tuples`);
    };
    if (Array.isArray(v)) v.forEach((x, j) => add(j, x));
    else if (v instanceof RSet) for (const x of v.values()) add(x, x);
    else if (v instanceof RObject) for (const [k, x] of v.entries()) add(k, x);
    else throw typeError(`operand ${i + 1} must be one of {string, array, set, object}`);
    return pairs;
  };
  const out = new RSet();
  for (const [ka, a] of toPairs(args[0]!, 0))
    for (const [kb, b] of toPairs(args[1]!, 1)) {
      const na = parseCIDR(a);
      const nb = parseCIDR(b, true);
      if (!na) throw builtinError(`invalid CIDR address: ${a}`);
      if (!nb) throw builtinError(`invalid CIDR address: ${b}`);
      if (na.v6 === nb.v6 && nb.addr >= na.addr && lastOf(nb) <= lastOf(na)) out.add([ka, kb]);
    }
  return out;
});
def('net.lookup_ip_addr', 1, (args) => {
  str(args, 0);
  // The engine does no I/O: name lookups are undefined.
  return undefined;
});
