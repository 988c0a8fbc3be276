import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { equal, fromJSON, keyOf, RObject, RSet, toJSON, typeName, type Value } from '../value.ts';
import { arr, bool, builtinError, collection, def, obj, operandError, str, typeError } from './registry.ts';

def('object.get', 3, (args) => {
  const o = obj(args, 0);
  const key = args[1]!;
  if (Array.isArray(key)) {
    let cur: Value = o;
    for (const k of key) {
      let next: Value | undefined;
      if (cur instanceof RObject) next = cur.get(k);
      else if (Array.isArray(cur)) next = typeof k === 'number' && Number.isInteger(k) ? cur[k] : undefined;
      else if (cur instanceof RSet) next = cur.has(k) ? k : undefined;
      if (next === undefined) return args[2]!;
      cur = next;
    }
    return cur;
  }
  return o.get(key) ?? args[2]!;
});
def('object.keys', 1, (args) => new RSet(obj(args, 0).keys()));
def('object.remove', 2, (args) => {
  const o = obj(args, 0);
  const keys = args[1]!;
  let remove: Value[];
  if (Array.isArray(keys)) remove = keys;
  else if (keys instanceof RSet) remove = keys.values();
  else if (keys instanceof RObject) remove = keys.keys();
  else throw typeError(`operand 2 must be one of {object, string, array} but got ${typeName(keys)}`);
  const drop = new Set(remove.map(keyOf));
  return new RObject(o.entries().filter(([k]) => !drop.has(keyOf(k))));
});
def('object.filter', 2, (args) => {
  const o = obj(args, 0);
  const keys = args[1]!;
  let keep: Value[];
  if (Array.isArray(keys)) keep = keys;
  else if (keys instanceof RSet) keep = keys.values();
  else if (keys instanceof RObject) keep = keys.keys();
  else throw typeError(`operand 2 must be one of {object, string, array} but got ${typeName(keys)}`);
  const set = new Set(keep.map(keyOf));
  return new RObject(o.entries().filter(([k]) => set.has(keyOf(k))));
});
function union(a: RObject, b: RObject): RObject {
  const out = new RObject(a.entries());
  for (const [k, v] of b.entries()) {
    const e = out.get(k);
    out.set(k, e instanceof RObject && v instanceof RObject ? union(e, v) : v);
  }
  return out;
}
def('object.union', 2, (args) => union(obj(args, 0), obj(args, 1)));
def('object.union_n', 1, (args) => {
  let out = new RObject();
  for (const o of arr(args, 0)) {
    if (!(o instanceof RObject))
      throw typeError(`operand 1 must be array of objects but got array containing ${typeName(o)}`);
    out = union(out, o);
  }
  return out;
});
function subset(sup: Value, sub: Value): boolean {
  if (sup instanceof RObject && sub instanceof RObject)
    return sub.entries().every(([k, v]) => {
      const s = sup.get(k);
      return (
        s !== undefined &&
        (s instanceof RObject && v instanceof RObject
          ? subset(s, v)
          : s instanceof RSet && v instanceof RSet
            ? subset(s, v)
            : Array.isArray(s) && Array.isArray(v)
              ? subset(s, v)
              : equal(s, v))
      );
    });
  if (sup instanceof RSet && sub instanceof RSet) return sub.values().every((v) => sup.has(v));
  if (Array.isArray(sup) && Array.isArray(sub)) {
    if (sub.length === 0) return true;
    for (let i = 0; i + sub.length <= sup.length; i++)
      if (sub.every((v, j) => equal(sup[i + j]!, v))) return true;
    return false;
  }
  if (Array.isArray(sup) && sub instanceof RSet)
    return sub.values().every((v) => sup.some((x) => equal(x, v)));
  return equal(sup, sub);
}
def('object.subset', 2, (args) => {
  const [a, b] = args;
  const ok = (v: Value) => v instanceof RObject || v instanceof RSet || Array.isArray(v);
  if (!ok(a!)) throw operandError(0, 'one of {object, set, array}', a!);
  if (!ok(b!)) throw operandError(1, 'one of {object, set, array}', b!);
  if (a instanceof RObject !== b instanceof RObject)
    throw typeError('both arguments object.subset must be of the same type or array and set');
  return subset(a!, b!);
});

// JSON documents
function pathsOf(v: Value, i: number): Value[][] {
  const items = Array.isArray(v) ? v : v instanceof RSet ? v.values() : null;
  if (!items) throw typeError(`operand ${i + 1} must be one of {array, set} but got ${typeName(v)}`);
  return items.map((p) => {
    if (typeof p === 'string')
      return p
        .replace(/^\//, '')
        .split('/')
        .filter((x) => x !== '')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (Array.isArray(p)) return p;
    throw typeError(
      `operand ${i + 1} must be one of {set, array} containing string paths or array of path segments but got ${typeName(p)}`,
    );
  });
}
function keyMatch(coll: Value, seg: Value): Value | undefined {
  if (coll instanceof RObject) return coll.has(seg) ? seg : undefined;
  if (Array.isArray(coll)) {
    const idx = typeof seg === 'string' && /^\d+$/.test(seg) ? Number(seg) : seg;
    return typeof idx === 'number' && idx >= 0 && idx < coll.length ? idx : undefined;
  }
  return undefined;
}
function filterTree(v: Value, tree: Map<string, unknown>): Value {
  if (tree.size === 0) return v;
  if (v instanceof RObject) {
    const out = new RObject();
    for (const [k, val] of v.entries()) {
      const sub = tree.get(keyOf(k)) as Map<string, unknown> | undefined;
      if (sub) out.set(k, filterTree(val, sub));
    }
    return out;
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((val, i) => {
      const sub = (tree.get(keyOf(String(i))) ?? tree.get(keyOf(i))) as Map<string, unknown> | undefined;
      if (sub) out.push(filterTree(val, sub));
    });
    return out;
  }
  if (v instanceof RSet) return new RSet(v.values().filter((x) => tree.has(keyOf(x))));
  return v;
}
function buildTree(paths: Value[][]): Map<string, unknown> {
  const root = new Map<string, unknown>();
  for (const p of paths) {
    let node = root;
    if (p.length === 0) return new Map();
    for (const seg of p) {
      const key = keyOf(seg);
      let next = node.get(key) as Map<string, unknown> | undefined;
      if (!next) {
        next = new Map();
        node.set(key, next);
      }
      node = next;
    }
    node.set('\u0000leaf', new Map());
  }
  return root;
}
function stripLeaves(tree: Map<string, unknown>): Map<string, unknown> {
  if (tree.has('\u0000leaf')) return new Map();
  const out = new Map<string, unknown>();
  for (const [k, v] of tree) out.set(k, stripLeaves(v as Map<string, unknown>));
  return out;
}
def('json.filter', 2, (args) => filterTree(obj(args, 0), stripLeaves(buildTree(pathsOf(args[1]!, 1)))));
function removePath(v: Value, path: Value[]): Value {
  if (path.length === 0) return v;
  const [head, ...rest] = path;
  if (v instanceof RObject) {
    if (!v.has(head!)) return v;
    const out = new RObject(v.entries());
    if (rest.length === 0) out.delete(head!);
    else out.set(head!, removePath(v.get(head!)!, rest));
    return out;
  }
  if (Array.isArray(v)) {
    const idx = keyMatch(v, head!);
    if (idx === undefined) return v;
    if (rest.length === 0) return v.filter((_, i) => i !== idx);
    return v.map((x, i) => (i === idx ? removePath(x, rest) : x));
  }
  if (v instanceof RSet && rest.length === 0) return new RSet(v.values().filter((x) => !equal(x, head!)));
  return v;
}
def('json.remove', 2, (args) => {
  let out: Value = obj(args, 0);
  for (const p of pathsOf(args[1]!, 1)) out = removePath(out, p);
  return out;
});
def('json.marshal', 1, (args) => JSON.stringify(toJSON(args[0]!)));
def('json.marshal_with_options', 2, (args) => {
  const opts = obj(args, 1);
  const pretty =
    opts.get('pretty') === true || opts.get('indent') !== undefined || opts.get('prefix') !== undefined;
  const indent = (opts.get('indent') as string | undefined) ?? '\t';
  const prefix = (opts.get('prefix') as string | undefined) ?? '';
  const text = JSON.stringify(toJSON(args[0]!), null, pretty ? indent : undefined);
  return pretty
    ? text
        .split('\n')
        .map((l) => prefix + l)
        .join('\n')
    : text;
});
def('json.unmarshal', 1, (args) => {
  const text = str(args, 0);
  try {
    return fromJSON(JSON.parse(text));
  } catch (error) {
    if ((error as Error).name === 'BuiltinError') throw error;
    throw builtinError(`invalid character in JSON: ${(error as Error).message}`);
  }
});
def('json.is_valid', 1, (args) => {
  if (typeof args[0] !== 'string') return false;
  try {
    JSON.parse(args[0]);
    return true;
  } catch {
    return false;
  }
});
def('yaml.marshal', 1, (args) => stringifyYaml(toJSON(args[0]!)));
def('yaml.unmarshal', 1, (args) => {
  try {
    return fromJSON(parseYaml(str(args, 0)) ?? null);
  } catch (error) {
    throw builtinError(`yaml: ${(error as Error).message.split('\n')[0]}`);
  }
});
def('yaml.is_valid', 1, (args) => {
  if (typeof args[0] !== 'string') return false;
  try {
    parseYaml(args[0]);
    return true;
  } catch {
    return false;
  }
});

// JSON Patch (RFC 6902)
function ptr(p: Value): Value[] {
  if (typeof p === 'string') {
    if (p === '') return [];
    if (!p.startsWith('/')) throw builtinError('invalid JSON pointer');
    return p
      .slice(1)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  }
  if (Array.isArray(p)) return p;
  throw builtinError('invalid path');
}
function getAt(doc: Value, path: Value[]): Value | undefined {
  let cur: Value | undefined = doc;
  for (const seg of path) {
    if (cur instanceof RObject) cur = cur.get(seg);
    else if (Array.isArray(cur)) {
      const i = typeof seg === 'string' ? Number(seg) : seg;
      cur = typeof i === 'number' && Number.isInteger(i) ? cur[i] : undefined;
    } else if (cur instanceof RSet) cur = cur.has(seg) ? seg : undefined;
    else return undefined;
  }
  return cur;
}
function setAt(doc: Value, path: Value[], value: Value, mode: 'add' | 'replace'): Value | undefined {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (doc instanceof RObject) {
    if (rest.length === 0) {
      if (mode === 'replace' && !doc.has(head!)) return undefined;
      const out = new RObject(doc.entries());
      out.set(head!, value);
      return out;
    }
    const child = doc.get(head!);
    if (child === undefined) return undefined;
    const next = setAt(child, rest, value, mode);
    if (next === undefined) return undefined;
    const out = new RObject(doc.entries());
    out.set(head!, next);
    return out;
  }
  if (Array.isArray(doc)) {
    const idx = head === '-' ? doc.length : typeof head === 'string' ? Number(head) : (head as number);
    if (!Number.isInteger(idx) || idx < 0 || idx > doc.length) return undefined;
    if (rest.length === 0) {
      if (mode === 'add') return [...doc.slice(0, idx), value, ...doc.slice(idx)];
      if (idx >= doc.length) return undefined;
      return doc.map((x, i) => (i === idx ? value : x));
    }
    if (idx >= doc.length) return undefined;
    const next = setAt(doc[idx]!, rest, value, mode);
    return next === undefined ? undefined : doc.map((x, i) => (i === idx ? next : x));
  }
  if (doc instanceof RSet && rest.length === 0 && mode === 'add') return new RSet([...doc.values(), value]);
  return undefined;
}
function removeAt(doc: Value, path: Value[]): Value | undefined {
  if (path.length === 0) return undefined;
  if (getAt(doc, path) === undefined) return undefined;
  return removePath(
    doc,
    path.map((p, i) =>
      Array.isArray(getAt(doc, path.slice(0, i))) && typeof p === 'string' ? Number(p) : p,
    ),
  );
}
def('json.patch', 2, (args) => {
  let doc: Value | undefined = args[0]!;
  for (const op of arr(args, 1)) {
    if (!(op instanceof RObject)) throw builtinError('operation must be an object');
    const kind = op.get('op');
    const path = op.get('path');
    if (typeof kind !== 'string' || path === undefined) throw builtinError('operation needs op and path');
    const p = ptr(path);
    switch (kind) {
      case 'add':
        doc = setAt(doc!, p, op.get('value')!, 'add');
        break;
      case 'replace':
        doc = setAt(doc!, p, op.get('value')!, 'replace');
        break;
      case 'remove':
        doc = removeAt(doc!, p);
        break;
      case 'move':
      case 'copy': {
        const from = ptr(op.get('from')!);
        const v = getAt(doc!, from);
        if (v === undefined) return undefined;
        if (kind === 'move') doc = removeAt(doc!, from);
        if (doc !== undefined) doc = setAt(doc, p, v, 'add');
        break;
      }
      case 'test': {
        const v = getAt(doc!, p);
        if (v === undefined || !equal(v, op.get('value')!)) return undefined;
        break;
      }
      default:
        throw builtinError(`unknown operation ${kind}`);
    }
    if (doc === undefined) return undefined;
  }
  return doc;
});

// Encodings
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
def('base64.encode', 1, (args) => b64(str(args, 0)));
def('base64.decode', 1, (args) => {
  const s = str(args, 0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) throw builtinError('illegal base64 data');
  return Buffer.from(s, 'base64').toString('utf8');
});
def('base64.is_valid', 1, (args) => {
  const s = str(args, 0);
  return /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0;
});
def('base64url.encode', 1, (args) =>
  Buffer.from(str(args, 0), 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
);
def('base64url.encode_no_pad', 1, (args) => Buffer.from(str(args, 0), 'utf8').toString('base64url'));
def('base64url.decode', 1, (args) => {
  const s = str(args, 0);
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1)
    throw builtinError('illegal base64 data');
  return Buffer.from(s, 'base64url').toString('utf8');
});
def('hex.encode', 1, (args) => Buffer.from(str(args, 0), 'utf8').toString('hex'));
def('hex.decode', 1, (args) => {
  const s = str(args, 0);
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw builtinError(`encoding/hex: invalid byte`);
  return Buffer.from(s, 'hex').toString('utf8');
});
const qescape = (s: string) =>
  encodeURIComponent(s)
    .replace(/%20/g, '+')
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/~/g, '~');
def('urlquery.encode', 1, (args) => qescape(str(args, 0)));
def('urlquery.decode', 1, (args) => {
  try {
    return decodeURIComponent(str(args, 0).replace(/\+/g, ' '));
  } catch {
    throw builtinError('invalid URL escape');
  }
});
def('urlquery.encode_object', 1, (args) => {
  const o = obj(args, 0);
  const parts: string[] = [];
  for (const [k, v] of o.sortedEntries()) {
    if (typeof k !== 'string') throw typeError('operand 1 must be object[string: string]');
    const vals = typeof v === 'string' ? [v] : collection([v], 0, 'one of {string, array, set}');
    for (const x of vals) {
      if (typeof x !== 'string') throw typeError('operand 1 values must be strings');
      parts.push(`${qescape(k)}=${qescape(x)}`);
    }
  }
  return parts.join('&');
});
def('urlquery.decode_object', 1, (args) => {
  const out = new Map<string, string[]>();
  for (const part of str(args, 0).split('&')) {
    if (!part) continue;
    const [k, v = ''] = part.split('=');
    const key = decodeURIComponent(k!.replace(/\+/g, ' '));
    const list = out.get(key) ?? [];
    list.push(decodeURIComponent(v.replace(/\+/g, ' ')));
    out.set(key, list);
  }
  return new RObject([...out.entries()].map(([k, v]) => [k, v]));
});
void bool;
