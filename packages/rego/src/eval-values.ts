import type { Term } from './ast.ts';
import type { CompiledRule, RuleNode } from './compiler.ts';
import { RegoError } from './errors.ts';
import { equal, RObject, RSet, type Value } from './value.ts';

// Pure helpers of the evaluator: building and merging the values of rules.

function isGround(t: Term): boolean {
  switch (t.type) {
    case 'null':
    case 'boolean':
    case 'number':
    case 'string':
      return true;
    case 'array':
    case 'set':
      return t.items.every(isGround);
    case 'object':
      return t.items.every(([k, v]) => isGround(k) && isGround(v));
    default:
      return false;
  }
}

/** A node whose rules have no body and ground values, and nothing below it. */
export function isConstantNode(node: RuleNode): boolean {
  if (node.kind !== 'complete' || node.children.size > 0 || node.rules.length === 0) return false;
  return node.rules.every(
    (r) =>
      r.body.length === 0 &&
      r.elses.length === 0 &&
      r.value !== null &&
      isGround(r.value) &&
      r.path.length === r.staticLength,
  );
}

/** `coll[key]`, or undefined. */
export function lookupIn(coll: Value, key: Value): Value | undefined {
  if (Array.isArray(coll)) {
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 0) return undefined;
    return coll[key];
  }
  if (coll instanceof RObject) return coll.get(key);
  if (coll instanceof RSet) return coll.has(key) ? key : undefined;
  return undefined;
}

export function setIn(target: Value | undefined, path: string[], value: Value): Value {
  if (path.length === 0) return value;
  const obj = target instanceof RObject ? new RObject(target.entries()) : new RObject();
  const [head, ...rest] = path;
  obj.set(head!, setIn(obj.get(head!), rest, value));
  return obj;
}

export function insertPath(
  target: Value,
  keys: Value[],
  leaf: Value,
  rule: CompiledRule,
  multi: boolean,
): Value {
  if (keys.length === 0) {
    if (multi) {
      const set = target instanceof RSet ? new RSet(target.values()) : new RSet();
      set.add(leaf);
      return set;
    }
    return leaf;
  }
  if (!(target instanceof RObject))
    throw new RegoError('eval_conflict_error', 'object keys must be unique', rule.loc);
  const [head, ...rest] = keys;
  const existing = target.get(head!);
  let next: Value;
  if (rest.length === 0 && !multi) {
    if (existing !== undefined && !equal(existing, leaf))
      throw new RegoError('eval_conflict_error', 'object keys must be unique', rule.loc);
    next = leaf;
  } else {
    next = insertPath(
      existing ?? (rest.length === 0 && multi ? new RSet() : new RObject()),
      rest,
      leaf,
      rule,
      multi,
    );
  }
  const copy = target;
  copy.set(head!, next);
  return copy;
}

export function mergeValues(a: Value, b: Value, rule: CompiledRule): Value {
  if (a instanceof RObject && b instanceof RObject) {
    const out = new RObject(a.entries());
    for (const [k, v] of b.entries()) {
      const e = out.get(k);
      out.set(k, e === undefined ? v : mergeValues(e, v, rule));
    }
    return out;
  }
  if (equal(a, b)) return a;
  throw new RegoError('eval_conflict_error', 'object keys must be unique', rule.loc);
}
