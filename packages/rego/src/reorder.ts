import type { Body, Expr, Term } from './ast.ts';
import { type BodyWalker, refTermOutputs, termOutputs, type VarTerm, walkVars } from './safety.ts';

/**
 * Reorders bodies as OPA's compiler does, so a body may use a variable before the expression that binds
 * it: `y == x + 1; x = input.a; y = 3` runs as `x = input.a; y = 3; y == x + 1`. Each pass takes the
 * first expression (in the order written) whose variables are all bound by the expressions already
 * taken; a body that is already in a workable order is left as it is. What can never be ordered is
 * left in place for the safety check to report.
 *
 * A call whose argument is a reference that binds a variable another argument reads
 * (`foo == input.foos[foo]`) first has that reference moved into an expression of its own, as OPA's
 * compiler rewrites it, so the variable is bound before the call reads it.
 */
export function reorderBody(body: Body, arities: Map<string, number>): Body {
  const expanded = body.flatMap((e) => hoistBindingArgs(reorderNested(e, arities), arities));
  const binds = expanded.map((e) => exprBinds(e, arities));
  const bindable = new Set(binds.flatMap((b) => [...b]));
  const uses = expanded.map((e) => {
    const vars = new Set<string>();
    collectVars(e, vars);
    return new Set([...vars].filter((v) => bindable.has(v)));
  });
  const safe = new Set<string>();
  const order: number[] = [];
  const taken = new Set<number>();
  while (order.length < expanded.length) {
    let next = -1;
    for (let i = 0; i < expanded.length && next < 0; i++) {
      if (taken.has(i)) continue;
      if ([...uses[i]!].every((v) => safe.has(v) || binds[i]!.has(v))) next = i;
    }
    if (next < 0) break;
    taken.add(next);
    order.push(next);
    for (const v of binds[next]!) safe.add(v);
  }
  if (order.length < expanded.length)
    for (let i = 0; i < expanded.length; i++) if (!taken.has(i)) order.push(i);
  if (order.every((i, j) => i === j) && expanded.length === body.length) return expanded;
  return order.map((i) => expanded[i]!);
}

/** What an expression binds when it succeeds (nothing when negated, nothing outside an `every`). */
function exprBinds(e: Expr, arities: Map<string, number>): Set<string> {
  const bound = new Set<string>();
  if (e.negated) return bound;
  switch (e.kind) {
    case 'some':
    case 'every':
      return bound;
    case 'somein':
      termOutputs(e.key, false, bound, arities);
      termOutputs(e.value, false, bound, arities);
      refTermOutputs(e.domain, bound, arities);
      return bound;
    case 'term': {
      const t = e.term;
      if (t.type === 'call' && isUnification(t)) {
        termOutputs(t.args[0], false, bound, arities);
        termOutputs(t.args[1], false, bound, arities);
      } else refTermOutputs(t, bound, arities);
      return bound;
    }
  }
}

const isUnification = (t: Term): boolean =>
  t.type === 'call' && Boolean(t.infix) && t.fn.length === 1 && (t.fn[0] === 'eq' || t.fn[0] === 'assign');

function collectVars(e: Expr, into: Set<string>) {
  const add = (v: VarTerm) => into.add(v.name);
  const nested: BodyWalker = (b, _top, fn) => {
    for (const x of b) collectExprVars(x, fn);
  };
  const collectExprVars = (x: Expr, fn: (v: VarTerm) => unknown) => {
    for (const w of x.with) walkVars(w.value, fn, nested);
    switch (x.kind) {
      case 'some':
        return;
      case 'somein':
        walkVars(x.domain, fn, nested);
        walkVars(x.key, fn, nested);
        walkVars(x.value, fn, nested);
        return;
      case 'every':
        walkVars(x.domain, fn, nested);
        nested(x.body, false, fn);
        return;
      case 'term':
        walkVars(x.term, fn, nested);
    }
  };
  collectExprVars(e, add);
}

let hoisted = 0;

/** Moves a call's reference arguments that bind a variable another argument reads into expressions of their own. */
function hoistBindingArgs(e: Expr, arities: Map<string, number>): Expr[] {
  if (e.kind !== 'term' || e.term.type !== 'call' || isUnification(e.term)) return [e];
  const call = e.term;
  const before: Expr[] = [];
  const args = call.args.map((arg, i) => {
    if (arg.type !== 'ref') return arg;
    const binds = new Set<string>();
    refTermOutputs(arg, binds, arities);
    if (binds.size === 0) return arg;
    const others = new Set<string>();
    call.args.forEach((other, j) => {
      if (j !== i) walkVars(other, (v) => others.add(v.name));
    });
    if (![...binds].some((v) => others.has(v))) return arg;
    // No Rego identifier starts with `$`, so this name cannot meet one of the policy's.
    const local: Term = { type: 'var', name: `$hoisted${++hoisted}`, loc: arg.loc };
    before.push({
      kind: 'term',
      term: { type: 'call', fn: ['eq'], infix: '=', args: [local, arg], loc: arg.loc },
      negated: false,
      with: [],
      loc: e.loc,
    });
    return local;
  });
  if (before.length === 0 || e.negated || e.with.length > 0) return [e];
  return [...before, { ...e, term: { ...call, args } }];
}

/** Reorders the bodies of the comprehensions in a term (a rule's head, say). */
export function reorderTerm(t: Term, arities: Map<string, number>): Term {
  const term = (t: Term): Term => {
    switch (t.type) {
      case 'arraycompr':
      case 'setcompr':
        return { ...t, head: term(t.head), body: reorderBody(t.body, arities) };
      case 'objectcompr':
        return { ...t, key: term(t.key), value: term(t.value), body: reorderBody(t.body, arities) };
      case 'call':
        return { ...t, args: t.args.map(term) };
      case 'ref':
        return { ...t, head: term(t.head), path: t.path.map(term) };
      case 'array':
      case 'set':
        return { ...t, items: t.items.map(term) };
      case 'object':
        return { ...t, items: t.items.map(([k, v]) => [term(k), term(v)] as [Term, Term]) };
      case 'template':
        return { ...t, parts: t.parts.map((p) => (typeof p === 'string' ? p : term(p))) };
      default:
        return t;
    }
  };
  return term(t);
}

/** Reorders the bodies nested in an expression: comprehensions and `every`. */
function reorderNested(e: Expr, arities: Map<string, number>): Expr {
  const term = (t: Term) => reorderTerm(t, arities);
  const withs = e.with.map((w) => ({ ...w, value: term(w.value) }));
  switch (e.kind) {
    case 'some':
      return e;
    case 'somein':
      return { ...e, domain: term(e.domain), with: withs };
    case 'every':
      return { ...e, domain: term(e.domain), body: reorderBody(e.body, arities), with: withs };
    case 'term':
      return { ...e, term: term(e.term), with: withs };
  }
}
