import type { Body, Expr, Rule, Term } from './ast.ts';
import { builtins } from './builtins/index.ts';
import { RegoError } from './errors.ts';

/**
 * OPA's safety rule, checked at compile time: every variable a rule uses must be bound somewhere by
 * its body — by assignment or unification, by iterating a reference, by `some … in`, or as a function
 * argument. Bindings made inside `not` do not count.
 */
export function checkSafety(rule: Rule, functionArity: Map<string, number> = new Map()): void {
  const used = new Map<string, Term>();
  const bound = new Set<string>();
  const isVar = (name: string) => name !== 'input' && name !== 'data' && !name.startsWith('_$');

  const useTerm = (t: Term | null | undefined) =>
    walk(t, (v) => isVar(v.name) && !used.has(v.name) && used.set(v.name, v));
  const bindTerm = (t: Term | null | undefined) => walk(t, (v) => bound.add(v.name));

  function walk(t: Term | null | undefined, fn: (v: Extract<Term, { type: 'var' }>) => unknown): void {
    if (!t) return;
    switch (t.type) {
      case 'var':
        fn(t);
        return;
      case 'ref':
        walk(t.head, fn);
        for (const p of t.path) walk(p, fn);
        return;
      case 'array':
      case 'set':
        for (const i of t.items) walk(i, fn);
        return;
      case 'object':
        for (const [k, v] of t.items) {
          walk(k, fn);
          walk(v, fn);
        }
        return;
      case 'call':
        for (const a of t.args) walk(a, fn);
        return;
      case 'template':
        for (const p of t.parts) if (typeof p !== 'string') walk(p, fn);
        return;
      case 'arraycompr':
      case 'setcompr':
        walk(t.head, fn);
        body(t.body, false, fn);
        return;
      case 'objectcompr':
        walk(t.key, fn);
        walk(t.value, fn);
        body(t.body, false, fn);
        return;
      default:
        return;
    }
  }

  /** Variables a term can bind: unification patterns and reference indexes (not call arguments). */
  function outputs(t: Term | null | undefined, negated: boolean): void {
    if (!t || negated) return;
    switch (t.type) {
      case 'var':
        bound.add(t.name);
        return;
      case 'ref':
        refOutputs(t);
        return;
      case 'array':
        for (const i of t.items) outputs(i, negated);
        return;
      case 'object':
        for (const [, v] of t.items) outputs(v, negated);
        return;
      default:
        refOutputs(t);
    }
  }

  /** Reference indexes anywhere inside a term iterate, and so bind. */
  function refOutputs(t: Term | null | undefined): void {
    if (!t) return;
    switch (t.type) {
      case 'ref':
        // An index that is a variable or a pattern (`r[[1, x]]`) iterates and binds.
        for (const p of t.path) {
          outputs(p, false);
          refOutputs(p);
        }
        refOutputs(t.head);
        return;
      case 'call': {
        const name = t.fn.join('.');
        const arity = builtins.get(name)?.arity ?? functionArity.get(name) ?? -1;
        t.args.forEach((a, i) => {
          // The extra last argument of a builtin call receives its result.
          if (arity >= 0 && t.args.length === arity + 1 && i === arity) outputs(a, false);
          else refOutputs(a);
        });
        if (t.fn[0] === 'walk' && t.args.length === 2) outputs(t.args[1], false);
        return;
      }
      case 'array':
      case 'set':
        for (const i of t.items) refOutputs(i);
        return;
      case 'object':
        for (const [k, v] of t.items) {
          refOutputs(k);
          refOutputs(v);
        }
        return;
      case 'template':
        for (const p of t.parts) if (typeof p !== 'string') refOutputs(p);
        return;
      default:
        return;
    }
  }

  function expr(e: Expr, fn: (v: Extract<Term, { type: 'var' }>) => unknown, top: boolean) {
    for (const w of e.with) walk(w.value, fn);
    const negated = e.negated || !top;
    switch (e.kind) {
      case 'some':
        return;
      case 'somein':
        walk(e.domain, fn);
        if (!negated) {
          bindTerm(e.key);
          bindTerm(e.value);
        }
        walk(e.key, fn);
        walk(e.value, fn);
        refOutputs(e.domain);
        return;
      case 'every':
        walk(e.domain, fn);
        bindTerm(e.key);
        bindTerm(e.value);
        body(e.body, true, fn);
        return;
      case 'term': {
        const t = e.term;
        walk(t, fn);
        if (t.type === 'call' && t.infix && (t.fn[0] === 'assign' || t.fn[0] === 'eq') && t.fn.length === 1) {
          outputs(t.args[0], negated);
          outputs(t.args[1], negated);
        } else if (!negated) refOutputs(t);
        return;
      }
    }
  }

  function body(b: Body, top: boolean, fn: (v: Extract<Term, { type: 'var' }>) => unknown) {
    for (const e of b) expr(e, fn, top);
  }

  const useFn = (v: Extract<Term, { type: 'var' }>) =>
    isVar(v.name) && !used.has(v.name) && used.set(v.name, v);
  for (const a of rule.args ?? []) bindTerm(a);
  body(rule.body, true, useFn);
  for (const el of rule.elses) body(el.body, true, useFn);
  // Comprehension and every bodies, anywhere in the rule, bind their own variables: count those too.
  const seen = new Set<Body>();
  const nestedBodies = (t: Term | null | undefined): void => {
    if (!t) return;
    switch (t.type) {
      case 'arraycompr':
      case 'setcompr':
      case 'objectcompr':
        if (!seen.has(t.body)) {
          seen.add(t.body);
          for (const e of t.body) expr(e, () => {}, true);
          scanBody(t.body);
        }
        if (t.type === 'objectcompr') {
          nestedBodies(t.key);
          nestedBodies(t.value);
        } else nestedBodies(t.head);
        return;
      case 'call':
        t.args.forEach(nestedBodies);
        return;
      case 'array':
      case 'set':
        t.items.forEach(nestedBodies);
        return;
      case 'object':
        for (const [k, v] of t.items) {
          nestedBodies(k);
          nestedBodies(v);
        }
        return;
      case 'ref':
        nestedBodies(t.head);
        t.path.forEach(nestedBodies);
        return;
      case 'template':
        for (const p of t.parts) if (typeof p !== 'string') nestedBodies(p);
        return;
      default:
        return;
    }
  };
  const scanBody = (b: Body): void => {
    for (const e of b) {
      for (const w of e.with) nestedBodies(w.value);
      if (e.kind === 'term') nestedBodies(e.term);
      else if (e.kind === 'somein') nestedBodies(e.domain);
      else if (e.kind === 'every') {
        nestedBodies(e.domain);
        if (!seen.has(e.body)) {
          seen.add(e.body);
          for (const x of e.body) expr(x, () => {}, true);
          scanBody(e.body);
        }
      }
    }
  };
  scanBody(rule.body);
  for (const el of rule.elses) {
    scanBody(el.body);
    nestedBodies(el.value);
  }
  nestedBodies(rule.value);
  nestedBodies(rule.key);
  rule.ref.forEach(nestedBodies);
  for (const a of rule.args ?? []) nestedBodies(a);
  useTerm(rule.value);
  useTerm(rule.key);
  for (const el of rule.elses) useTerm(el.value);
  rule.ref.slice(1).forEach((t) => useTerm(t));
  for (const [name, v] of used) {
    if (!bound.has(name))
      throw new RegoError(
        'rego_unsafe_var_error',
        `var ${name.replace(/\$\d+$/, '')} is unsafe`,
        v.loc,
        rule.module.source,
      );
  }
}
