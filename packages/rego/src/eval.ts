import type { Body, Expr, Term } from './ast.ts';
import { RegoError } from './errors.ts';
import { CallEvaluator } from './eval-calls.ts';
import { walkInstead } from './eval-documents.ts';
import { displayName, type K, type KV, multiple, STOP } from './eval-state.ts';
import { lookupIn } from './eval-values.ts';
import { BigNum, compare, equal, formatValue, keyOf, RObject, RSet, type Value } from './value.ts';

export { type Budget, defaultBudget, type EvalOptions } from './eval-state.ts';
export { lookupIn } from './eval-values.ts';

/** Evaluates queries against compiled modules with a trail-based binding store and continuations. */
export class Evaluator extends CallEvaluator {
  // ---- bodies and expressions
  /**
   * Runs a body from expression i. Expressions with at most one way to succeed (a comparison, an
   * assignment from a single value, a rule, a lookup) are decided in a loop, their bindings left on the
   * trail for the caller to undo; the first that may succeed several ways (iteration, a comprehension's
   * generator, `with`) continues the rest of the body as a continuation.
   */
  evalBody(body: Body, i: number, k: K): boolean {
    for (; i < body.length; i++) {
      const e = body[i]!;
      const decided = this.exprOnce(e);
      if (decided === multiple) return this.evalExpr(e, () => this.evalBody(body, i + 1, k));
      if (!decided) return false;
    }
    return Boolean(k());
  }

  /** Decides an expression that can succeed at most one way: true (its bindings made), false, or `multiple`. */
  protected exprOnce(e: Expr): boolean | typeof multiple {
    if (e.with.length > 0 || e.kind === 'somein' || e.kind === 'every') return multiple;
    this.tick();
    if (this.coverage) this.cover(e.loc);
    if (e.kind === 'some') return true;
    const t = e.term;
    if (t.type === 'call' && t.infix && t.fn.length === 1 && (t.fn[0] === 'eq' || t.fn[0] === 'assign')) {
      if (e.negated) return multiple;
      return this.unifyOnce(t.args[0]!, t.args[1]!);
    }
    const v = this.single(t);
    if (v === multiple) return multiple;
    const holds = v !== undefined && v !== false;
    return e.negated ? !holds : holds;
  }

  /** `a = b` when one side is a lone variable or both have one value: bound or compared directly. */
  protected unifyOnce(a: Term, b: Term): boolean | typeof multiple {
    const freeA = a.type === 'var' && this.isUnboundPattern(a);
    const freeB = b.type === 'var' && this.isUnboundPattern(b);
    if (freeA && freeB) return multiple;
    if (freeA || freeB) {
      const other = this.single(freeA ? b : a);
      if (other === multiple) return multiple;
      if (other === undefined) return false;
      const name = freeA ? (a as { name: string }).name : (b as { name: string }).name;
      this.bind(name, other);
      return true;
    }
    if (this.isUnboundPattern(a) || this.isUnboundPattern(b)) return multiple;
    const va = this.single(a);
    if (va === multiple) return multiple;
    if (va === undefined) return false;
    const vb = this.single(b);
    if (vb === multiple) return multiple;
    return vb !== undefined && equal(va, vb);
  }

  protected evalExpr(e: Expr, k: K): boolean {
    this.tick();
    if (this.coverage) this.cover(e.loc);
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

  protected evalPositive(e: Expr, k: K): boolean {
    return e.with.length > 0 ? this.evalWith(e, k) : this.evalExprInner(e, k);
  }

  protected evalExprInner(e: Expr, k: K): boolean {
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

  protected evalTermExpr(t: Term, k: K): boolean {
    if (t.type === 'call') {
      const name = t.fn.length === 1 ? t.fn[0] : null;
      if ((name === 'eq' || name === 'assign') && t.infix) return this.unify(t.args[0]!, t.args[1]!, k);
    }
    // An expression with one value (a comparison, a rule, a lookup) is decided without a continuation.
    const v = this.single(t);
    if (v !== multiple) return v === undefined || v === false ? false : Boolean(k());
    if (t.type === 'call') return this.evalCall(t, (x) => (x === false ? false : k()), true);
    return this.evalTerm(t, (x) => (x === false ? false : k()));
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

  protected collect(body: Body, each: () => void) {
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

  protected evalTemplate(t: Extract<Term, { type: 'template' }>, i: number, acc: string, k: KV): boolean {
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

  /** The first n arguments' values; when every one has at most one value, without continuations. */
  protected evalArgs(args: Term[], n: number, k: (values: Value[]) => boolean | undefined | void): boolean {
    const direct: Value[] = [];
    for (let i = 0; i < n; i++) {
      const v = this.single(args[i]!);
      if (v === multiple) {
        if (n === 1) return this.evalTerm(args[0]!, (a) => k([a]));
        if (n === 2) return this.evalTerm(args[0]!, (a) => this.evalTerm(args[1]!, (b) => k([a, b])));
        return this.evalList(n === args.length ? args : args.slice(0, n), 0, [], k);
      }
      if (v === undefined) return false;
      direct.push(v);
    }
    return Boolean(k(direct));
  }

  /** Every argument's value when each has at most one; undefined when one has none. */
  protected singleArgs(args: Term[]): Value[] | undefined | typeof multiple {
    const out: Value[] = [];
    for (const a of args) {
      const v = this.single(a);
      if (v === multiple || v === undefined) return v;
      out.push(v);
    }
    return out;
  }

  /**
   * The value of a term that has at most one (a constant, a bound variable, a reference whose every
   * element is constant or bound), found without continuations; undefined when it has none; `multiple`
   * when the term may have several values or needs the general path (an unbound variable, a call, a
   * comprehension, `with data` in force).
   */
  protected single(t: Term): Value | undefined | typeof multiple {
    switch (t.type) {
      case 'string':
      case 'boolean':
        return t.value;
      case 'null':
        return null;
      case 'number':
        return Number.isSafeInteger(t.value) || !Number.isInteger(t.value) ? t.value : multiple;
      case 'var': {
        const v = this.env.get(t.name);
        if (v !== undefined) return v;
        if (t.name === 'input') return this.ctx.input;
        return multiple;
      }
      case 'ref':
        return this.singleRef(t);
      case 'call':
        return this.singleCall(t);
      case 'array': {
        const out: Value[] = [];
        for (const item of t.items) {
          const v = this.single(item);
          if (v === multiple || v === undefined) return v;
          out.push(v);
        }
        return out;
      }
      default:
        return multiple;
    }
  }

  /** `single` for a reference: input, data or a bound local, indexed by constants and bound variables. */
  protected singleRef(t: Extract<Term, { type: 'ref' }>): Value | undefined | typeof multiple {
    let v: Value | undefined;
    let from: number;
    const local = t.head.type === 'var' ? this.env.get(t.head.name) : undefined;
    if (local !== undefined) {
      // a reference into a bound local: container.resources.limits.cpu
      v = local;
      from = 0;
    } else {
      const prefix = this.prefixValue(t);
      if (prefix === walkInstead) return multiple;
      v = prefix;
      from = this.namesOf(t).length;
    }
    for (let i = from; v !== undefined && i < t.path.length; i++) {
      const key = this.single(t.path[i]!);
      if (key === multiple) return multiple;
      v = key === undefined ? undefined : lookupIn(v, key);
    }
    return v;
  }

  /**
   * The value at the constant names that start a reference to input or data (input.request.host,
   * data.pkg.rule[x]), looked up in a loop without a continuation each; `walkInstead` when the reference
   * needs the general path (a local head, `with data` in force, a namespace its rest may enumerate).
   */
  protected prefixValue(t: Extract<Term, { type: 'ref' }>): Value | undefined | typeof walkInstead {
    const head = t.head;
    if (head.type !== 'var' || this.env.has(head.name)) return walkInstead;
    const names = this.namesOf(t);
    if (head.name === 'input') {
      let v = this.ctx.input;
      for (let i = 0; v !== undefined && i < names.length; i++) v = lookupIn(v, names[i]!);
      return v;
    }
    if (head.name === 'data' && names.length > 0 && this.ctx.dataPatches.length === 0)
      return this.dataAt(names, names.length === t.path.length, t);
    return walkInstead;
  }

  /** `single` for a call of a builtin already called once without an output argument, not replaced by `with`. */
  protected singleCall(t: Extract<Term, { type: 'call' }>): Value | undefined | typeof multiple {
    // A builtin already called once without an output argument, not replaced by `with`.
    const builtin = t.builtin;
    if (!builtin || builtin.special || t.hasOut !== false || this.ctx.mocks.size > 0) return multiple;
    const args = this.singleArgs(t.args);
    if (args === multiple || args === undefined) return args;
    return this.callBuiltin(t.name!, builtin.fn, args, t);
  }

  /** The leading constant names of a reference's path, worked out once per term. */
  protected namesOf(t: Extract<Term, { type: 'ref' }>): string[] {
    if (t.names === undefined) {
      const names: string[] = [];
      for (const p of t.path) {
        if (p.type !== 'string') break;
        names.push(p.value);
      }
      t.names = names;
    }
    return t.names;
  }

  protected evalList(
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
  protected evalRef(t: Extract<Term, { type: 'ref' }>, k: KV): boolean {
    const v = this.prefixValue(t);
    if (v !== walkInstead) {
      if (v === undefined) return false;
      const n = this.namesOf(t).length;
      return n === t.path.length ? Boolean(k(v)) : this.index(v, t.path, n, k);
    }
    const head = t.head;
    if (head.type === 'var' && !this.env.has(head.name) && head.name === 'data')
      return this.evalDataRef(t.path, 0, this.compiled.root, this.data, [], k);
    return this.evalTerm(head, (h) => this.index(h, t.path, 0, k));
  }

  /** Indexes a value by the remaining path, iterating where a path element is an unbound variable. */
  protected index(value: Value, path: Term[], i: number, k: KV): boolean {
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
}

export { compare, keyOf };
