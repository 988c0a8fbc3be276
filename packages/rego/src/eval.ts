import type { Body, Expr, Term, With } from './ast.ts';
import { type BuiltinContext, builtins } from './builtins/index.ts';
import type { CompiledModules, CompiledRule, RuleNode } from './compiler.ts';
import { BuiltinError, RegoError } from './errors.ts';
import { BigNum, compare, equal, formatValue, keyOf, RObject, RSet, type Value } from './value.ts';

/** Limits that keep a hostile policy or input from hanging or exhausting the process. */
export type Budget = { maxSteps: number; maxMillis: number; maxCollection: number };
export const defaultBudget: Budget = { maxSteps: 5_000_000, maxMillis: 5_000, maxCollection: 1_000_000 };

export type EvalOptions = {
  input?: Value;
  data: Value;
  strictBuiltinErrors?: boolean;
  budget?: Partial<Budget>;
  print?: (message: string) => void;
  now?: bigint;
};

type K = () => boolean | undefined | void;
type KV = (v: Value) => boolean | undefined | void;

type Mock = { kind: 'value'; value: Value } | { kind: 'fn'; fn: string[] };

/** What `with` can change: input, parts of data, and functions. Each context has its own rule cache. */
type Ctx = {
  input: Value | undefined;
  dataPatches: { path: string[]; value: Value }[];
  mocks: Map<string, Mock>;
  cache: Map<number, Value | undefined>;
  inProgress: Set<number>;
};

const STOP = true;

/** Evaluates queries against compiled modules with a trail-based binding store and continuations. */
export class Evaluator {
  private readonly compiled: CompiledModules;
  private readonly env = new Map<string, Value>();
  private readonly trail: string[] = [];
  private ctx: Ctx;
  private readonly data: Value;
  private readonly strict: boolean;
  private readonly budget: Budget;
  private steps = 0;
  private depth = 0;
  private readonly deadline: number;
  readonly builtinCtx: BuiltinContext;

  constructor(compiled: CompiledModules, options: EvalOptions) {
    this.compiled = compiled;
    this.data = options.data;
    this.strict = options.strictBuiltinErrors ?? false;
    this.budget = options.budget ? { ...defaultBudget, ...options.budget } : defaultBudget;
    this.deadline = Date.now() + this.budget.maxMillis;
    this.ctx = {
      input: options.input,
      dataPatches: [],
      mocks: new Map(),
      cache: new Map(),
      inProgress: new Set(),
    };
    this.builtinCtx = new EvalBuiltinContext(
      options.now,
      options.print ?? noPrint,
      this.budget.maxCollection,
    );
  }

  // ---- bindings
  private bind(name: string, v: Value) {
    this.env.set(name, v);
    this.trail.push(name);
  }
  private undo(mark: number) {
    while (this.trail.length > mark) this.env.delete(this.trail.pop()!);
  }
  lookup(name: string): Value | undefined {
    return this.env.get(name);
  }

  private tick() {
    if (++this.steps % 1024 === 0) {
      if (this.steps > this.budget.maxSteps)
        throw new RegoError(
          'eval_budget_error',
          `evaluation exceeded its budget of ${this.budget.maxSteps} steps`,
        );
      if (Date.now() > this.deadline)
        throw new RegoError(
          'eval_budget_error',
          `evaluation exceeded its time budget of ${this.budget.maxMillis} ms`,
        );
    }
  }

  /** Runs a body and calls `k` for each solution, bindings visible through `lookup`. */
  evalQuery(body: Body, k: K): void {
    try {
      this.evalBody(body, 0, k);
    } catch (error) {
      if (error instanceof RangeError)
        throw new RegoError(
          'eval_budget_error',
          'evaluation nested too deeply (the call stack was exhausted)',
        );
      throw error;
    }
  }

  private enter(loc: Term['loc']) {
    if (++this.depth > 400)
      throw new RegoError(
        'eval_budget_error',
        'evaluation nested more than 400 rule or function calls deep',
        loc,
      );
  }

  // ---- bodies and expressions
  evalBody(body: Body, i: number, k: K): boolean {
    if (i === body.length) return Boolean(k());
    return this.evalExpr(body[i]!, () => this.evalBody(body, i + 1, k));
  }

  private evalExpr(e: Expr, k: K): boolean {
    this.tick();
    if (e.negated) {
      const mark = this.trail.length;
      let found = false;
      this.evalPositive(e, () => {
        found = true;
        return STOP;
      });
      this.undo(mark);
      return found ? false : Boolean(k());
    }
    return this.evalPositive(e, k);
  }

  private evalPositive(e: Expr, k: K): boolean {
    return e.with.length > 0 ? this.evalWith(e, k) : this.evalExprInner(e, k);
  }

  private evalExprInner(e: Expr, k: K): boolean {
    switch (e.kind) {
      case 'term':
        return this.evalTermExpr(e.term, k);
      case 'some':
        return Boolean(k());
      case 'somein':
        return this.evalTerm(e.domain, (dom) =>
          this.iterate(dom, (key, val) => {
            const mark = this.trail.length;
            const stop = e.key
              ? this.match(e.key, key, () => this.match(e.value, val, k))
              : this.match(e.value, val, k);
            this.undo(mark);
            return stop;
          }),
        );
      case 'every':
        return this.evalTerm(e.domain, (dom) => {
          if (!Array.isArray(dom) && !(dom instanceof RSet) && !(dom instanceof RObject)) return false;
          let all = true;
          this.iterate(dom, (key, val) => {
            const mark = this.trail.length;
            let ok = false;
            const bindAndRun = () =>
              this.evalBody(e.body, 0, () => {
                ok = true;
                return STOP;
              });
            if (e.key) this.match(e.key, key, () => this.match(e.value, val, bindAndRun));
            else this.match(e.value, val, bindAndRun);
            this.undo(mark);
            if (!ok) {
              all = false;
              return STOP;
            }
            return false;
          });
          return all ? k() : false;
        });
    }
  }

  private evalTermExpr(t: Term, k: K): boolean {
    if (t.type === 'call') {
      const name = t.fn.length === 1 ? t.fn[0] : null;
      if ((name === 'eq' || name === 'assign') && t.infix) return this.unify(t.args[0]!, t.args[1]!, k);
      return this.evalCall(t, (v) => (v === false ? false : k()), true);
    }
    return this.evalTerm(t, (v) => (v === false ? false : k()));
  }

  private evalWith(e: Expr, k: K): boolean {
    const outer = this.ctx;
    const inner: Ctx = {
      input: outer.input,
      dataPatches: [...outer.dataPatches],
      mocks: new Map(outer.mocks),
      cache: new Map(),
      inProgress: new Set(),
    };
    const values: { w: With; value: Value }[] = [];
    // With values are evaluated in the outer context.
    const collect = (i: number): boolean => {
      if (i === e.with.length) return this.applyWith(e, values, inner, outer, k);
      const w = e.with[i]!;
      const target = w.target;
      const targetName =
        target.type === 'var'
          ? [target.name]
          : target.type === 'ref' && target.head.type === 'var'
            ? [target.head.name, ...target.path.map((p) => (p.type === 'string' ? p.value : '?'))]
            : null;
      const isFn =
        targetName &&
        targetName[0] !== 'input' &&
        (targetName[0] !== 'data' || this.isFunctionPath(targetName.slice(1)));
      if (isFn && (w.value.type === 'var' || w.value.type === 'ref')) {
        const fn =
          w.value.type === 'var'
            ? [w.value.name]
            : w.value.head.type === 'var'
              ? [w.value.head.name, ...w.value.path.map((p) => (p.type === 'string' ? p.value : '?'))]
              : null;
        if (fn && (builtins.has(fn.join('.')) || (fn[0] === 'data' && this.isFunctionPath(fn.slice(1))))) {
          values.push({ w, value: { __fn: fn } as unknown as Value });
          const stop = collect(i + 1);
          values.pop();
          return stop;
        }
      }
      return this.evalTerm(w.value, (value) => {
        values.push({ w, value });
        const stop = collect(i + 1);
        values.pop();
        return stop;
      });
    };
    return collect(0);
  }

  private isFunctionPath(path: string[]): boolean {
    const node = this.nodeAt(path);
    return node?.kind === 'function';
  }

  private nodeAt(path: string[]): RuleNode | undefined {
    let node: RuleNode | undefined = this.compiled.root;
    for (const p of path) {
      node = node?.children.get(p);
      if (!node) return undefined;
    }
    return node;
  }

  private applyWith(e: Expr, values: { w: With; value: Value }[], inner: Ctx, outer: Ctx, k: K): boolean {
    for (const { w, value } of values) {
      const t = w.target;
      const path =
        t.type === 'var'
          ? [t.name]
          : t.type === 'ref' && t.head.type === 'var'
            ? [t.head.name, ...t.path.map((p) => (p.type === 'string' ? p.value : null))]
            : null;
      if (!path || path.some((p) => p === null))
        throw new RegoError(
          'rego_type_error',
          'with target must be a reference to input, data or a function',
          w.loc,
        );
      const p = path as string[];
      const fnMock = (value as unknown as { __fn?: string[] }).__fn;
      if (p[0] === 'input') {
        inner.input = p.length === 1 ? value : setIn(inner.input, p.slice(1), value);
      } else if (p[0] === 'data' && !this.isFunctionPath(p.slice(1))) {
        inner.dataPatches.push({ path: p.slice(1), value });
      } else {
        const name = p.join('.');
        if (p[0] !== 'data' && !builtins.has(name))
          throw new RegoError(
            'rego_compile_error',
            `with target ${name} is not a function or document`,
            w.loc,
          );
        inner.mocks.set(name, fnMock ? { kind: 'fn', fn: fnMock } : { kind: 'value', value });
      }
    }
    this.ctx = inner;
    const stop = this.evalExprInner({ ...e, with: [], negated: false } as Expr, () => {
      this.ctx = outer;
      const s = k();
      this.ctx = inner;
      return s;
    }) as boolean;
    this.ctx = outer;
    return stop;
  }

  // ---- terms
  /** Enumerates the values of a term; undefined terms produce none. */
  evalTerm(t: Term, k: KV): boolean {
    switch (t.type) {
      case 'null':
        return Boolean(k(null));
      case 'boolean':
      case 'string':
        return Boolean(k(t.value));
      case 'number':
        // Integer literals beyond 2^53 keep every digit, as OPA's big numbers do.
        if (!Number.isSafeInteger(t.value) && /^-?\d+$/.test(t.raw))
          return Boolean(k(new BigNum(BigInt(t.raw))));
        return Boolean(k(t.value));
      case 'var': {
        const v = this.env.get(t.name);
        if (v !== undefined) return Boolean(k(v));
        if (t.name === 'input') return this.ctx.input === undefined ? false : Boolean(k(this.ctx.input));
        if (t.name === 'data') return this.evalData([], 0, this.compiled.root, this.data, k);
        throw new RegoError('rego_unsafe_var_error', `var ${displayName(t.name)} is unsafe`, t.loc);
      }
      case 'ref':
        return this.evalRef(t, k);
      case 'array':
        return this.evalList(t.items, 0, [], (items) => k(items));
      case 'set':
        return this.evalList(t.items, 0, [], (items) => k(new RSet(items)));
      case 'object': {
        const flat = t.items.flat();
        return this.evalList(flat, 0, [], (items) => {
          const o = new RObject();
          for (let i = 0; i < items.length; i += 2) o.set(items[i]!, items[i + 1]!);
          return k(o);
        });
      }
      case 'arraycompr': {
        const out: Value[] = [];
        this.collect(t.body, () => this.evalTerm(t.head, (v) => void out.push(v)));
        return Boolean(k(out));
      }
      case 'setcompr': {
        const out = new RSet();
        this.collect(t.body, () => this.evalTerm(t.head, (v) => void out.add(v)));
        return Boolean(k(out));
      }
      case 'objectcompr': {
        const out = new RObject();
        this.collect(t.body, () =>
          this.evalTerm(t.key, (kv) =>
            this.evalTerm(t.value, (vv) => {
              const prev = out.get(kv);
              if (prev !== undefined && !equal(prev, vv))
                throw new RegoError('eval_conflict_error', 'object keys must be unique', t.loc);
              out.set(kv, vv);
            }),
          ),
        );
        return Boolean(k(out));
      }
      case 'call':
        return this.evalCall(t, k, false);
      case 'template':
        return this.evalTemplate(t, 0, '', k);
    }
  }

  private collect(body: Body, each: () => void) {
    const mark = this.trail.length;
    let count = 0;
    this.evalBody(body, 0, () => {
      each();
      if (++count > this.budget.maxCollection)
        throw new RegoError(
          'eval_budget_error',
          `a comprehension produced more than ${this.budget.maxCollection} items`,
        );
      return false;
    });
    this.undo(mark);
  }

  private evalTemplate(t: Extract<Term, { type: 'template' }>, i: number, acc: string, k: KV): boolean {
    if (i === t.parts.length) return Boolean(k(acc));
    const part = t.parts[i]!;
    if (typeof part === 'string') return this.evalTemplate(t, i + 1, acc + part, k);
    const values: Value[] = [];
    this.evalTerm(part, (v) => {
      values.push(v);
      return values.length > 1 ? STOP : false;
    });
    if (values.length > 1 && part.type !== 'ref')
      throw new RegoError('eval_conflict_error', 'template expression produced multiple values', part.loc);
    const text =
      values.length === 0
        ? '<undefined>'
        : typeof values[0] === 'string'
          ? (values[0] as string)
          : formatValue(values[0]!);
    return this.evalTemplate(t, i + 1, acc + text, k);
  }

  /** The first n arguments' values; one and two arguments (most calls) without intermediate arrays. */
  private evalArgs(args: Term[], n: number, k: (values: Value[]) => boolean | undefined | void): boolean {
    if (n === 1) return this.evalTerm(args[0]!, (a) => k([a]));
    if (n === 2) return this.evalTerm(args[0]!, (a) => this.evalTerm(args[1]!, (b) => k([a, b])));
    return this.evalList(n === args.length ? args : args.slice(0, n), 0, [], k);
  }

  private evalList(
    items: Term[],
    i: number,
    acc: Value[],
    k: (items: Value[]) => boolean | undefined | void,
  ): boolean {
    if (i === items.length) return Boolean(k(acc.slice()));
    return this.evalTerm(items[i]!, (v) => {
      acc.push(v);
      const stop = this.evalList(items, i + 1, acc, k);
      acc.pop();
      return stop;
    });
  }

  // ---- references
  private evalRef(t: Extract<Term, { type: 'ref' }>, k: KV): boolean {
    const head = t.head;
    if (head.type === 'var' && !this.env.has(head.name)) {
      if (head.name === 'data') return this.evalDataRef(t.path, 0, this.compiled.root, this.data, [], k);
      if (head.name === 'input') {
        if (this.ctx.input === undefined) return false;
        return this.index(this.ctx.input, t.path, 0, k);
      }
    }
    return this.evalTerm(head, (v) => this.index(v, t.path, 0, k));
  }

  /** Indexes a value by the remaining path, iterating where a path element is an unbound variable. */
  private index(value: Value, path: Term[], i: number, k: KV): boolean {
    if (i === path.length) return Boolean(k(value));
    const p = path[i]!;
    if (this.isUnboundPattern(p)) {
      return this.iterate(value, (key, val) => {
        const mark = this.trail.length;
        const stop = this.match(p, key, () => this.index(val, path, i + 1, k));
        this.undo(mark);
        return stop;
      });
    }
    return this.evalTerm(p, (key) => {
      const next = lookupIn(value, key);
      return next === undefined ? false : this.index(next, path, i + 1, k);
    });
  }

  /** Calls `k(key, value)` for each element: array index and item, object key and value, set member twice. */
  iterate(coll: Value, k: (key: Value, value: Value) => boolean | undefined | void): boolean {
    if (Array.isArray(coll)) {
      for (let i = 0; i < coll.length; i++) if (k(i, coll[i]!)) return true;
    } else if (coll instanceof RSet) {
      for (const v of coll.map.values()) if (k(v, v)) return true;
    } else if (coll instanceof RObject) {
      return coll.some(k);
    }
    return false;
  }

  private patchAt(path: string[]): Value | undefined | null {
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

  private evalDataRef(
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

  private dataStep(
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
  private overlayPatches(base: Value | undefined, at: string[]): Value | undefined {
    let out = base;
    for (const patch of this.ctx.dataPatches)
      if (patch.path.length > at.length && at.every((s, j) => patch.path[j] === s))
        out = setIn(out, patch.path.slice(at.length), patch.value);
    return out;
  }

  private hasPatchUnder(path: string[]) {
    return this.ctx.dataPatches.some(
      (p) => path.every((s, j) => p.path[j] === s) || p.path.every((s, j) => path[j] === s),
    );
  }

  private evalData(_path: Term[], _i: number, node: RuleNode, base: Value | undefined, k: KV): boolean {
    const v = this.materialize(node, base, []);
    return v === undefined ? false : Boolean(k(v));
  }

  /** The full value of a namespace node: base data merged with every rule below it. */
  private materialize(node: RuleNode | undefined, base: Value | undefined, at: string[]): Value | undefined {
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
  private nodeValue(node: RuleNode, base: Value | undefined): Value | undefined {
    const cache = this.ctx.cache;
    if (cache.has(node.id)) return cache.get(node.id);
    if (this.ctx.inProgress.has(node.id)) {
      const r = node.rules[0] ?? node.defaultRule!;
      throw new RegoError('rego_recursion_error', `rule data.${node.path.join('.')} is recursive`, r.loc);
    }
    this.ctx.inProgress.add(node.id);
    let value: Value | undefined;
    this.enter((node.rules[0] ?? node.defaultRule!).loc);
    try {
      value = this.computeNode(node, base);
    } finally {
      this.depth--;
      this.ctx.inProgress.delete(node.id);
    }
    cache.set(node.id, value);
    return value;
  }

  private computeNode(node: RuleNode, base: Value | undefined): Value | undefined {
    // A rule like `blocked := {"a", "b"}` depends on nothing: compute it once per compiled policy.
    if (node.constant !== undefined) return node.constant.value;
    if (node.constant === undefined && isConstantNode(node)) {
      const value = this.computeNodeOnce(node, base);
      node.constant = { value };
      return value;
    }
    return this.computeNodeOnce(node, base);
  }

  private computeNodeOnce(node: RuleNode, base: Value | undefined): Value | undefined {
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
          this.evalTerm(rule.key!, (v) => void out.add(v));
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

  private mergeChildren(
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

  private defaultValue(rule: CompiledRule): Value | undefined {
    let result: Value | undefined;
    this.evalTerm(rule.value!, (v) => {
      result = v;
      return STOP;
    });
    return result;
  }

  /** A complete rule's value: all solutions must agree; else branches are tried in order when there are none. */
  private completeRuleValue(rule: CompiledRule): Value | undefined {
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
      if (result !== undefined) return result;
    }
    return undefined;
  }

  // ---- calls
  private evalCall(t: Extract<Term, { type: 'call' }>, k: KV, _asExpr: boolean): boolean {
    t.name ??= t.fn.join('.');
    const name = t.name;
    if (this.ctx.mocks.size === 0 && t.fn[0] !== 'data') {
      // The common case: a builtin, not mocked. Its lookup is cached on the term.
      if (t.builtin === undefined) t.builtin = builtins.get(name) ?? null;
      const builtin = t.builtin;
      if (builtin && !builtin.special)
        return this.callWithOutput(
          t,
          builtin.arity,
          (args) => this.callBuiltin(name, builtin.fn, args, t),
          k,
        );
    }
    const mock = this.ctx.mocks.get(name);
    let fnPath = t.fn;
    if (mock?.kind === 'value') {
      return this.evalList(t.args, 0, [], () => k(mock.value));
    }
    if (mock?.kind === 'fn') fnPath = mock.fn;
    const fnName = fnPath.join('.');
    if (fnPath[0] === 'data') {
      const node = this.nodeAt(fnPath.slice(1));
      const arity = node?.rules[0]?.args?.length ?? node?.defaultRule?.args?.length ?? 0;
      return this.callWithOutput(t, arity, (args) => this.callFunction(node, args, t), k);
    }
    const builtin = builtins.get(fnName);
    if (!builtin) throw new RegoError('rego_type_error', `undefined function ${fnName}`, t.loc);
    if (builtin.special) return builtin.special(this, t, k);
    return this.callWithOutput(t, builtin.arity, (args) => this.callBuiltin(fnName, builtin.fn, args, t), k);
  }

  /** Evaluates the arguments; an extra last argument receives the result by unification. */
  private callWithOutput(
    t: Extract<Term, { type: 'call' }>,
    arity: number,
    fn: (args: Value[]) => Value | undefined,
    k: KV,
  ): boolean {
    const hasOut = arity >= 0 && t.args.length === arity + 1;
    if (arity >= 0 && !hasOut && t.args.length !== arity)
      throw new RegoError(
        'rego_type_error',
        `${t.fn.join('.')}: arity mismatch: expected ${arity} arguments, got ${t.args.length}`,
        t.loc,
      );
    const n = hasOut ? t.args.length - 1 : t.args.length;
    return this.evalArgs(t.args, n, (args) => {
      const result = fn(args);
      if (result === undefined) return false;
      if (hasOut) {
        const mark = this.trail.length;
        const stop = this.match(t.args[t.args.length - 1]!, result, () => k(true));
        this.undo(mark);
        return stop;
      }
      return k(result);
    });
  }

  private callBuiltin(
    name: string,
    fn: (args: Value[], ctx: BuiltinContext) => Value | undefined,
    args: Value[],
    t: Term,
  ): Value | undefined {
    try {
      return fn(args, this.builtinCtx);
    } catch (error) {
      if (error instanceof BuiltinError) {
        if (this.strict || error.message.startsWith('!')) {
          throw new RegoError(error.code, `${name}: ${error.message.replace(/^!/, '')}`, t.loc);
        }
        return undefined;
      }
      throw error;
    }
  }

  /** Calls a user function: each clause whose arguments match; all outputs must agree. */
  private callFunction(node: RuleNode | undefined, args: Value[], t: Term): Value | undefined {
    if (!node) throw new RegoError('rego_type_error', `undefined function`, t.loc);
    this.enter(t.loc);
    try {
      return this.callFunctionClauses(node, args);
    } finally {
      this.depth--;
    }
  }

  private callFunctionClauses(node: RuleNode, args: Value[]): Value | undefined {
    let result: Value | undefined;
    for (const rule of node.rules) {
      const branches = [{ body: rule.body, value: rule.value }, ...rule.elses];
      const mark = this.trail.length;
      let clauseResult: Value | undefined;
      this.matchArgs(rule.args!, args, 0, () => {
        for (const b of branches) {
          let found = false;
          this.evalBody(b.body, 0, () =>
            this.evalTerm(b.value!, (v) => {
              if (clauseResult !== undefined && !equal(clauseResult, v))
                throw new RegoError(
                  'eval_conflict_error',
                  'functions must not produce multiple outputs for same inputs',
                  rule.loc,
                );
              clauseResult = v;
              found = true;
            }),
          );
          if (found) break;
        }
        return false;
      });
      this.undo(mark);
      if (clauseResult !== undefined) {
        if (result !== undefined && !equal(result, clauseResult))
          throw new RegoError(
            'eval_conflict_error',
            'functions must not produce multiple outputs for same inputs',
            rule.loc,
          );
        result = clauseResult;
      }
    }
    if (result === undefined && node.defaultRule) result = this.defaultValue(node.defaultRule);
    return result;
  }

  private matchArgs(patterns: Term[], args: Value[], i: number, k: K): boolean {
    if (i === patterns.length) return Boolean(k());
    return this.match(patterns[i]!, args[i]!, () => this.matchArgs(patterns, args, i + 1, k));
  }

  // ---- unification
  /** True when the term has an unbound variable outside any reference or call: it can receive a value. */
  isUnboundPattern(t: Term): boolean {
    switch (t.type) {
      case 'var':
        return !this.env.has(t.name) && t.name !== 'input' && t.name !== 'data';
      case 'array':
        return t.items.some((x) => this.isUnboundPattern(x));
      case 'object':
        return t.items.some(([, x]) => this.isUnboundPattern(x));
      default:
        return false;
    }
  }

  /** Unifies two terms, binding variables on either side. */
  unify(a: Term, b: Term, k: K): boolean {
    const pa = this.isUnboundPattern(a);
    const pb = this.isUnboundPattern(b);
    if (pa && !pb) return this.evalTerm(b, (vb) => this.matchScoped(a, vb, k));
    if (pb && !pa) return this.evalTerm(a, (va) => this.matchScoped(b, va, k));
    if (pa && pb) {
      if (a.type === 'array' && b.type === 'array') {
        if (a.items.length !== b.items.length) return false;
        return this.unifyItems(a.items, b.items, 0, k);
      }
      if (a.type === 'object' && b.type === 'object' && a.items.length === b.items.length) {
        return this.unifyItems(
          a.items.map((x) => x[1]),
          b.items.map((x) => x[1]),
          0,
          k,
        );
      }
      const v = a.type === 'var' ? a : b;
      throw new RegoError(
        'rego_unsafe_var_error',
        `var ${displayName(v.type === 'var' ? v.name : '?')} is unsafe`,
        a.loc,
      );
    }
    return this.evalTerm(a, (va) => this.evalTerm(b, (vb) => (equal(va, vb) ? k() : false)));
  }

  private unifyItems(as: Term[], bs: Term[], i: number, k: K): boolean {
    if (i === as.length) return Boolean(k());
    return this.unify(as[i]!, bs[i]!, () => this.unifyItems(as, bs, i + 1, k));
  }

  matchScoped(t: Term, v: Value, k: K): boolean {
    const mark = this.trail.length;
    const stop = this.match(t, v, k);
    this.undo(mark);
    return stop;
  }

  /** Matches a term against a value, binding unbound variables. The caller undoes bindings. */
  match(t: Term, v: Value, k: K): boolean {
    switch (t.type) {
      case 'var': {
        const bound = this.env.get(t.name);
        if (bound !== undefined) return equal(bound, v) ? Boolean(k()) : false;
        if (t.name === 'input' || t.name === 'data')
          return this.evalTerm(t, (x) => (equal(x, v) ? k() : false));
        this.bind(t.name, v);
        return Boolean(k());
      }
      case 'array':
        if (!Array.isArray(v) || v.length !== t.items.length) return false;
        return this.matchItems(t.items, v, 0, k);
      case 'object':
        if (!(v instanceof RObject) || v.size !== t.items.length) return false;
        return this.matchEntries(t.items, v, 0, k);
      default:
        return this.evalTerm(t, (x) => (equal(x, v) ? k() : false));
    }
  }

  private matchItems(items: Term[], v: Value[], i: number, k: K): boolean {
    if (i === items.length) return Boolean(k());
    return this.match(items[i]!, v[i]!, () => this.matchItems(items, v, i + 1, k));
  }

  private matchEntries(items: [Term, Term][], v: RObject, i: number, k: K): boolean {
    if (i === items.length) return Boolean(k());
    const [kt, vt] = items[i]!;
    return this.evalTerm(kt, (key) => {
      const inner = v.get(key);
      return inner === undefined ? false : this.match(vt, inner, () => this.matchEntries(items, v, i + 1, k));
    });
  }
}

const noPrint = () => {};

/** Per-evaluation state for builtins: a fixed clock and a cache, both created only if used. */
class EvalBuiltinContext implements BuiltinContext {
  private fixedNow: bigint | undefined;
  private cached: Map<string, unknown> | undefined;
  readonly print: (message: string) => void;
  readonly maxCollection: number;
  constructor(now: bigint | undefined, print: (message: string) => void, maxCollection: number) {
    this.fixedNow = now;
    this.print = print;
    this.maxCollection = maxCollection;
  }
  get now(): bigint {
    this.fixedNow ??= BigInt(Date.now()) * 1_000_000n;
    return this.fixedNow;
  }
  get cache(): Map<string, unknown> {
    this.cached ??= new Map();
    return this.cached;
  }
}

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
function isConstantNode(node: RuleNode): boolean {
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

function displayName(name: string) {
  return name.replace(/\$\d+$/, '');
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

function setIn(target: Value | undefined, path: string[], value: Value): Value {
  if (path.length === 0) return value;
  const obj = target instanceof RObject ? new RObject(target.entries()) : new RObject();
  const [head, ...rest] = path;
  obj.set(head!, setIn(obj.get(head!), rest, value));
  return obj;
}

function insertPath(target: Value, keys: Value[], leaf: Value, rule: CompiledRule, multi: boolean): Value {
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

function mergeValues(a: Value, b: Value, rule: CompiledRule): Value {
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

export { compare, keyOf };
