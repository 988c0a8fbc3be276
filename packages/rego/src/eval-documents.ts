import type { Body, Term } from './ast.ts';
import type { CompiledRule, RuleNode } from './compiler.ts';
import { RegoError } from './errors.ts';
import { EvaluatorBase, type KV, multiple, STOP } from './eval-state.ts';
import { insertPath, isConstantNode, lookupIn, mergeValues, setIn } from './eval-values.ts';
import { equal, RObject, RSet, type Value } from './value.ts';

/** Marks, in a context's cache, a rule whose value is being computed. */
const computing: unique symbol = Symbol('computing');

/** What `dataAt` answers when a reference must take the general path. */
export const walkInstead: unique symbol = Symbol('walk instead');

/** Data documents: base data, `with data` patches, and the values of rules and user functions. */
export abstract class DocumentEvaluator extends EvaluatorBase {
  protected patchAt(path: string[]): Value | undefined | null {
    // Latest patch wins; a patch above the path supplies the value by indexing.
    for (let i = this.ctx.dataPatches.length - 1; i >= 0; i--) {
      const patch = this.ctx.dataPatches[i]!;
      if (patch.path.length <= path.length && patch.path.every((s, j) => s === path[j])) {
        let v: Value | undefined = patch.value;
        for (const seg of path.slice(patch.path.length)) {
          v = v === undefined ? undefined : lookupIn(v, seg);
        }
        return v === undefined ? null : v;
      }
    }
    return undefined;
  }

  protected evalDataRef(
    path: Term[],
    i: number,
    node: RuleNode | undefined,
    base: Value | undefined,
    at: string[],
    k: KV,
  ): boolean {
    if (this.ctx.dataPatches.length > 0) {
      const patched = this.patchAt(at);
      if (patched === null) return false;
      if (patched !== undefined) return this.index(patched, path, i, k);
    }
    if (!node || (node.rules.length === 0 && !node.defaultRule && node.children.size === 0)) {
      const patched = this.ctx.dataPatches.length > 0 ? this.overlayPatches(base, at) : base;
      if (patched === undefined) return false;
      return this.index(patched, path, i, k);
    }
    if (node.rules.length > 0 || node.defaultRule) {
      if (node.kind === 'function') return false;
      const value = this.nodeValue(node, base);
      if (value === undefined) return false;
      return this.index(value, path, i, k);
    }
    if (i === path.length) {
      const v = this.materialize(node, base, at);
      return v === undefined ? false : Boolean(k(v));
    }
    const p = path[i]!;
    if (p.type === 'string') return this.dataStep(path, i, node, base, at, k, p.value);
    if (this.isUnboundPattern(p)) {
      const keys = new Set<string>(node.children.keys());
      if (base instanceof RObject) for (const key of base.keys()) if (typeof key === 'string') keys.add(key);
      for (const key of keys) {
        const mark = this.trail.length;
        const stop = this.match(p, key, () => this.dataStep(path, i, node, base, at, k, key));
        this.undo(mark);
        if (stop) return true;
      }
      return false;
    }
    return this.evalTerm(p, (key) => this.dataStep(path, i, node, base, at, k, key));
  }

  /**
   * The document at a path of constant names, with no `with data` patches in force: the same answer as
   * evalDataRef, walking the rule tree and base data side by side in a loop. When the path is only the
   * start of a reference (`whole` false) and ends at a namespace, whose keys the rest of the reference
   * may enumerate, it answers `walkInstead` and the caller takes the general path.
   */
  protected dataAt(
    names: string[],
    whole: boolean,
    t?: Extract<Term, { type: 'ref' }>,
  ): Value | undefined | typeof walkInstead {
    // The rule tree is fixed once compiled: where a reference's names first reach rules is worked out
    // once per term. (Base data beside rules is never read: a node with rules is the rules' value.)
    if (t) {
      if (t.rules === undefined) t.rules = this.rulesAlong(names);
      if (t.rules) {
        const node = t.rules.node as RuleNode;
        if (node.kind === 'function') return undefined;
        let v = this.nodeValue(node, undefined);
        for (let j = t.rules.depth; v !== undefined && j < names.length; j++) v = lookupIn(v, names[j]!);
        return v;
      }
    }
    let node: RuleNode | undefined = this.compiled.root;
    let base: Value | undefined = this.data;
    for (let i = 0; i <= names.length; i++) {
      if (!node || (node.rules.length === 0 && !node.defaultRule && node.children.size === 0)) {
        // Plain base data from here on.
        for (let j = i; base !== undefined && j < names.length; j++) base = lookupIn(base, names[j]!);
        return base;
      }
      if (node.rules.length > 0 || node.defaultRule) {
        if (node.kind === 'function') return undefined;
        let v = this.nodeValue(node, base);
        for (let j = i; v !== undefined && j < names.length; j++) v = lookupIn(v, names[j]!);
        return v;
      }
      if (i === names.length) return whole ? this.materialize(node, base, names) : walkInstead;
      const key = names[i]!;
      const child: RuleNode | undefined = node.children.get(key);
      const nextBase: Value | undefined = base === undefined ? undefined : lookupIn(base, key);
      if (!child && nextBase === undefined) return undefined;
      node = child;
      base = nextBase;
    }
    return undefined;
  }

  /** The first node along a path of names that has rules, with its depth; null when there is none. */
  private rulesAlong(names: string[]): { node: RuleNode; depth: number } | null {
    let node: RuleNode | undefined = this.compiled.root;
    for (let i = 0; node; i++) {
      if (node.rules.length > 0 || node.defaultRule) return { node, depth: i };
      if (i === names.length) return null;
      node = node.children.get(names[i]!);
    }
    return null;
  }

  protected dataStep(
    path: Term[],
    i: number,
    node: RuleNode,
    base: Value | undefined,
    at: string[],
    k: KV,
    rawKey: Value,
  ): boolean {
    // The data store's keys are strings; a number names the same key, as OPA's store does.
    const key = typeof rawKey === 'number' && node.children.size > 0 ? String(rawKey) : rawKey;
    if (typeof key !== 'string') {
      const next = base === undefined ? undefined : lookupIn(base, key);
      return next === undefined ? false : this.index(next, path, i + 1, k);
    }
    const child = node.children.get(key);
    const nextBase = base === undefined ? undefined : lookupIn(base, key);
    const patched = this.ctx.dataPatches.length > 0;
    const nextAt = patched ? [...at, key] : at;
    if (!child && nextBase === undefined && (!patched || !this.hasPatchUnder(nextAt))) return false;
    return this.evalDataRef(path, i + 1, child, nextBase, nextAt, k);
  }

  /** Base data at `at` with every `with data…` patch below it applied. */
  protected overlayPatches(base: Value | undefined, at: string[]): Value | undefined {
    let out = base;
    for (const patch of this.ctx.dataPatches)
      if (patch.path.length > at.length && at.every((s, j) => patch.path[j] === s))
        out = setIn(out, patch.path.slice(at.length), patch.value);
    return out;
  }

  protected hasPatchUnder(path: string[]) {
    return this.ctx.dataPatches.some(
      (p) => path.every((s, j) => p.path[j] === s) || p.path.every((s, j) => path[j] === s),
    );
  }

  protected evalData(_path: Term[], _i: number, node: RuleNode, base: Value | undefined, k: KV): boolean {
    const v = this.materialize(node, base, []);
    return v === undefined ? false : Boolean(k(v));
  }

  /** The full value of a namespace node: base data merged with every rule below it. */
  protected materialize(
    node: RuleNode | undefined,
    base: Value | undefined,
    at: string[],
  ): Value | undefined {
    if (this.ctx.dataPatches.length > 0) {
      const patched = this.patchAt(at);
      if (patched === null) return undefined;
      if (patched !== undefined) return patched;
    }
    if (!node) return base;
    if (node.rules.length > 0 || node.defaultRule) {
      if (node.kind === 'function') return undefined;
      return this.nodeValue(node, base);
    }
    const out = new RObject();
    if (base instanceof RObject) for (const [kk, vv] of base.entries()) out.set(kk, vv);
    else if (base !== undefined && node.children.size === 0) return base;
    for (const [name, child] of node.children) {
      const v = this.materialize(child, base instanceof RObject ? base.get(name) : undefined, [...at, name]);
      if (v !== undefined) out.set(name, v);
      else if (child.kind === 'function') continue;
    }
    for (const patch of this.ctx.dataPatches)
      if (patch.path.length > at.length && at.every((s, j) => patch.path[j] === s)) {
        // Patches below this node are already applied by the recursive calls when a child node exists.
        const rel = patch.path.slice(at.length);
        if (!node.children.has(rel[0]!)) {
          const merged = setIn(out, rel, patch.value);
          return merged;
        }
      }
    return out;
  }

  // ---- rules
  /** The value of the rules at a node (cached per context), merged with base data and child nodes. */
  protected nodeValue(node: RuleNode, base: Value | undefined): Value | undefined {
    if (node.constant !== undefined && !this.coverage) return node.constant.value;
    // One map per context holds both the values computed and the rules being computed (to find recursion).
    const cache = this.ctx.cache;
    const cached = cache.get(node.id);
    if (cached === computing) {
      const r = node.rules[0] ?? node.defaultRule!;
      throw new RegoError('rego_recursion_error', `rule data.${node.path.join('.')} is recursive`, r.loc);
    }
    if (cached !== undefined || cache.has(node.id)) return cached as Value | undefined;
    cache.set(node.id, computing);
    let value: Value | undefined;
    this.enter((node.rules[0] ?? node.defaultRule!).loc);
    try {
      value = this.computeNode(node, base);
    } catch (error) {
      cache.delete(node.id);
      throw error;
    } finally {
      this.depth--;
    }
    cache.set(node.id, value);
    return value;
  }

  protected computeNode(node: RuleNode, base: Value | undefined): Value | undefined {
    // A rule like `blocked := {"a", "b"}` depends on nothing: compute it once per compiled policy.
    if (node.constant !== undefined) {
      if (this.coverage) for (const r of node.rules) this.cover(r.loc);
      return node.constant.value;
    }
    if (node.constant === undefined && isConstantNode(node)) {
      const value = this.computeNodeOnce(node, base);
      node.constant = { value };
      return value;
    }
    return this.computeNodeOnce(node, base);
  }

  protected computeNodeOnce(node: RuleNode, base: Value | undefined): Value | undefined {
    const depth = node.path.length;
    if (node.kind === 'complete') {
      let result: Value | undefined;
      let resultRule: CompiledRule | null = null;
      for (const rule of node.rules) {
        const v = this.completeRuleValue(rule);
        if (v === undefined) continue;
        if (result !== undefined && !equal(result, v))
          throw new RegoError(
            'eval_conflict_error',
            resultRule && resultRule !== rule
              ? `complete rules must not produce multiple outputs`
              : 'complete rules must not produce multiple outputs',
            rule.loc,
          );
        result = v;
        resultRule = rule;
      }
      if (result === undefined && node.defaultRule) result = this.defaultValue(node.defaultRule);
      return this.mergeChildren(node, result, base);
    }
    if (node.kind === 'multi') {
      const out = new RSet();
      for (const rule of node.rules) {
        const mark = this.trail.length;
        this.evalBody(rule.body, 0, () => {
          if (this.coverage) this.cover(rule.loc);
          const key = this.single(rule.key!);
          if (key === multiple) this.evalTerm(rule.key!, (v) => void out.add(v));
          else if (key !== undefined) out.add(key);
          if (out.size > this.budget.maxCollection)
            throw new RegoError(
              'eval_budget_error',
              `a rule produced more than ${this.budget.maxCollection} items`,
            );
          return false;
        });
        this.undo(mark);
      }
      return out;
    }
    // Object-producing rules (partial objects and ref heads), possibly beside complete rules below them.
    let out: Value = new RObject();
    const completeHere: Value[] = [];
    for (const rule of node.rules) {
      const rest = rule.path.slice(depth);
      if (rest.length === 0) {
        const v = this.completeRuleValue(rule);
        if (v !== undefined) completeHere.push(v);
        continue;
      }
      const mark = this.trail.length;
      const bodies: { body: Body; value: Term | null }[] = [{ body: rule.body, value: rule.value }];
      for (const b of bodies) {
        this.evalBody(b.body, 0, () =>
          this.evalList(rest, 0, [], (keys) => {
            if (this.coverage) this.cover(rule.loc);
            if (rule.kind === 'multi') {
              return this.evalTerm(rule.key!, (member) => {
                out = insertPath(out, keys, member, rule, true);
              });
            }
            return this.evalTerm(b.value!, (leaf) => {
              out = insertPath(out, keys, leaf, rule, false);
            });
          }),
        );
      }
      this.undo(mark);
    }
    if (completeHere.length > 0) {
      for (const c of completeHere) out = mergeValues(out, c, node.rules[0]!);
    }
    if (out instanceof RObject && out.size === 0 && node.defaultRule)
      return this.defaultValue(node.defaultRule);
    return this.mergeChildren(node, out, base);
  }

  protected mergeChildren(
    node: RuleNode,
    value: Value | undefined,
    _base: Value | undefined,
  ): Value | undefined {
    if (node.children.size === 0) return value;
    let out: Value | undefined = value;
    for (const [name, child] of node.children) {
      const v = this.materialize(child, undefined, [...child.path]);
      if (v === undefined) continue;
      if (out === undefined) out = new RObject();
      if (!(out instanceof RObject)) {
        const r = node.rules[0]!;
        throw new RegoError('eval_conflict_error', `object keys must be unique`, r.loc);
      }
      const existing = out.get(name);
      const copy = new RObject(out.entries());
      copy.set(name, existing === undefined ? v : mergeValues(existing, v, node.rules[0]!));
      out = copy;
    }
    return out;
  }

  /**
   * The value of one definition of a complete rule, on its own: how `opa test` runs a test that is
   * defined more than once (test_x, test_x#01, …), each definition a test of its own.
   */
  definitionValue(rule: CompiledRule): Value | undefined {
    try {
      return this.completeRuleValue(rule);
    } catch (error) {
      if (error instanceof RangeError)
        throw new RegoError(
          'eval_budget_error',
          'evaluation nested too deeply (the call stack was exhausted)',
        );
      throw error;
    }
  }

  protected defaultValue(rule: CompiledRule): Value | undefined {
    if (this.coverage) this.cover(rule.loc);
    let result: Value | undefined;
    this.evalTerm(rule.value!, (v) => {
      result = v;
      return STOP;
    });
    return result;
  }

  /** A complete rule's value: all solutions must agree; else branches are tried in order when there are none. */
  protected completeRuleValue(rule: CompiledRule): Value | undefined {
    const branches = [{ body: rule.body, value: rule.value }, ...rule.elses];
    for (const b of branches) {
      let result: Value | undefined;
      const mark = this.trail.length;
      this.evalBody(b.body, 0, () =>
        this.evalTerm(b.value!, (v) => {
          if (result !== undefined && !equal(result, v))
            throw new RegoError(
              'eval_conflict_error',
              'complete rules must not produce multiple outputs',
              rule.loc,
            );
          result = v;
        }),
      );
      this.undo(mark);
      if (result !== undefined) {
        if (this.coverage) this.cover('loc' in b ? b.loc : rule.loc);
        return result;
      }
    }
    return undefined;
  }

  // ---- supplied by the layers above
  protected abstract evalList(
    terms: Term[],
    i: number,
    acc: Value[],
    k: (values: Value[]) => boolean | undefined | void,
  ): boolean;
  protected abstract index(value: Value, path: Term[], i: number, k: KV): boolean;
}
