import type { Expr, Term, With } from './ast.ts';
import { type BuiltinContext, builtins } from './builtins/index.ts';
import type { RuleNode } from './compiler.ts';
import { BuiltinError, RegoError } from './errors.ts';
import type { Evaluator } from './eval.ts';
import { DocumentEvaluator } from './eval-documents.ts';
import { type Ctx, type K, type KV, multiple } from './eval-state.ts';
import { setIn } from './eval-values.ts';
import { equal, type Value } from './value.ts';

/** Builtin calls, and `with`, which replaces input, data and functions for one expression. */
export abstract class CallEvaluator extends DocumentEvaluator {
  protected evalWith(e: Expr, k: K): boolean {
    const outer = this.ctx;
    const inner: Ctx = {
      input: outer.input,
      dataPatches: [...outer.dataPatches],
      mocks: new Map(outer.mocks),
      cache: new Map(),
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

  protected isFunctionPath(path: string[]): boolean {
    const node = this.nodeAt(path);
    return node?.kind === 'function';
  }

  protected nodeAt(path: string[]): RuleNode | undefined {
    let node: RuleNode | undefined = this.compiled.root;
    for (const p of path) {
      node = node?.children.get(p);
      if (!node) return undefined;
    }
    return node;
  }

  protected applyWith(e: Expr, values: { w: With; value: Value }[], inner: Ctx, outer: Ctx, k: K): boolean {
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

  // ---- calls
  protected evalCall(t: Extract<Term, { type: 'call' }>, k: KV, _asExpr: boolean): boolean {
    t.name ??= t.fn.join('.');
    const name = t.name;
    if (this.ctx.mocks.size === 0 && t.fn[0] !== 'data') {
      // The common case: a builtin, not mocked. Its lookup is cached on the term.
      if (t.builtin === undefined) t.builtin = builtins.get(name) ?? null;
      const builtin = t.builtin;
      if (builtin && !builtin.special) {
        // Arguments with one value each (nearly all): the builtin is called straight away.
        const result = this.single(t);
        if (result !== multiple) return result === undefined ? false : Boolean(k(result));
        return this.callWithOutput(
          t,
          builtin.arity,
          (args) => this.callBuiltin(name, builtin.fn, args, t),
          k,
        );
      }
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
    if (builtin.special) return builtin.special(this as unknown as Evaluator, t, k);
    return this.callWithOutput(t, builtin.arity, (args) => this.callBuiltin(fnName, builtin.fn, args, t), k);
  }

  /** Evaluates the arguments; an extra last argument receives the result by unification. */
  protected callWithOutput(
    t: Extract<Term, { type: 'call' }>,
    arity: number,
    fn: (args: Value[]) => Value | undefined,
    k: KV,
  ): boolean {
    // Worked out on the first unmocked call of a builtin (whose arity never changes); a function's, or a
    // call's while `with` replaces functions, is checked each time.
    const cacheable = Boolean(t.builtin) && this.ctx.mocks.size === 0;
    let hasOut = cacheable ? t.hasOut : undefined;
    if (hasOut === undefined) {
      hasOut = arity >= 0 && t.args.length === arity + 1;
      if (arity >= 0 && !hasOut && t.args.length !== arity)
        throw new RegoError(
          'rego_type_error',
          `${t.fn.join('.')}: arity mismatch: expected ${arity} arguments, got ${t.args.length}`,
          t.loc,
        );
      if (cacheable) t.hasOut = hasOut;
    }
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

  protected callBuiltin(
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
  protected callFunction(node: RuleNode | undefined, args: Value[], t: Term): Value | undefined {
    if (!node) throw new RegoError('rego_type_error', `undefined function`, t.loc);
    this.enter(t.loc);
    try {
      return this.callFunctionClauses(node, args);
    } finally {
      this.depth--;
    }
  }

  protected callFunctionClauses(node: RuleNode, args: Value[]): Value | undefined {
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
              if (this.coverage) this.cover(rule.loc);
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

  protected matchArgs(patterns: Term[], args: Value[], i: number, k: K): boolean {
    if (i === patterns.length) return Boolean(k());
    return this.match(patterns[i]!, args[i]!, () => this.matchArgs(patterns, args, i + 1, k));
  }

  // ---- supplied by the layer above
  protected abstract evalExprInner(e: Expr, k: K): boolean;
  protected abstract evalArgs(
    args: Term[],
    n: number,
    k: (values: Value[]) => boolean | undefined | void,
  ): boolean;
}
