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

  const walk = (t: Term | null | undefined, fn: (v: VarTerm) => unknown) => walkVars(t, fn, body);
  const outputs = (t: Term | null | undefined, negated: boolean) =>
    termOutputs(t, negated, bound, functionArity);
  const refOutputs = (t: Term | null | undefined) => refTermOutputs(t, bound, functionArity);

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

export type VarTerm = Extract<Term, { type: 'var' }>;
export type BodyWalker = (b: Body, top: boolean, fn: (v: VarTerm) => unknown) => void;

/** Calls `fn` for every variable in a term, comprehension bodies included (through `body`). */
export function walkVars(t: Term | null | undefined, fn: (v: VarTerm) => unknown, body?: BodyWalker): void {
  if (!t) return;
  switch (t.type) {
    case 'var':
      fn(t);
      return;
    case 'ref':
      walkVars(t.head, fn, body);
      for (const p of t.path) walkVars(p, fn, body);
      return;
    case 'array':
    case 'set':
      for (const i of t.items) walkVars(i, fn, body);
      return;
    case 'object':
      for (const [k, v] of t.items) {
        walkVars(k, fn, body);
        walkVars(v, fn, body);
      }
      return;
    case 'call':
      for (const a of t.args) walkVars(a, fn, body);
      return;
    case 'template':
      for (const p of t.parts) if (typeof p !== 'string') walkVars(p, fn, body);
      return;
    case 'arraycompr':
    case 'setcompr':
      walkVars(t.head, fn, body);
      body?.(t.body, false, fn);
      return;
    case 'objectcompr':
      walkVars(t.key, fn, body);
      walkVars(t.value, fn, body);
      body?.(t.body, false, fn);
      return;
    default:
      return;
  }
}

/** Variables a term can bind: unification patterns and reference indexes (not call arguments). */
export function termOutputs(
  t: Term | null | undefined,
  negated: boolean,
  bound: Set<string>,
  arities: Map<string, number>,
): void {
  if (!t || negated) return;
  switch (t.type) {
    case 'var':
      bound.add(t.name);
      return;
    case 'array':
      for (const i of t.items) termOutputs(i, negated, bound, arities);
      return;
    case 'object':
      for (const [, v] of t.items) termOutputs(v, negated, bound, arities);
      return;
    default:
      refTermOutputs(t, bound, arities);
  }
}

/** Reference indexes anywhere inside a term iterate, and so bind; so does a call's extra output argument. */
export function refTermOutputs(
  t: Term | null | undefined,
  bound: Set<string>,
  arities: Map<string, number>,
): void {
  if (!t) return;
  switch (t.type) {
    case 'ref':
      // An index that is a variable or a pattern (`r[[1, x]]`) iterates and binds.
      for (const p of t.path) {
        termOutputs(p, false, bound, arities);
        refTermOutputs(p, bound, arities);
      }
      refTermOutputs(t.head, bound, arities);
      return;
    case 'call': {
      const name = t.fn.join('.');
      const arity = builtins.get(name)?.arity ?? arities.get(name) ?? -1;
      t.args.forEach((a, i) => {
        // The extra last argument of a builtin call receives its result.
        if (arity >= 0 && t.args.length === arity + 1 && i === arity) termOutputs(a, false, bound, arities);
        else refTermOutputs(a, bound, arities);
      });
      if (t.fn[0] === 'walk' && t.args.length === 2) termOutputs(t.args[1], false, bound, arities);
      return;
    }
    case 'array':
    case 'set':
      for (const i of t.items) refTermOutputs(i, bound, arities);
      return;
    case 'object':
      for (const [k, v] of t.items) {
        refTermOutputs(k, bound, arities);
        refTermOutputs(v, bound, arities);
      }
      return;
    case 'template':
      for (const p of t.parts) if (typeof p !== 'string') refTermOutputs(p, bound, arities);
      return;
    default:
      return;
  }
}
