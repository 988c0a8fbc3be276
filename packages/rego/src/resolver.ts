import type { Body, Expr, Rule, Term } from './ast.ts';
import { builtins } from './builtins/index.ts';
import { RegoError } from './errors.ts';

class Scope {
  readonly vars = new Map<string, string>();
  readonly parent: Scope | null;
  constructor(parent: Scope | null) {
    this.parent = parent;
  }
  lookup(name: string): string | undefined {
    return this.vars.get(name) ?? this.parent?.lookup(name);
  }
}

let counter = 0;
const fresh = (name: string) => `${name}$${++counter}`;

/** Resolves names in one module (or a query): locals are renamed apart, globals become data/input refs. */
export class Resolver {
  private readonly globals: Map<string, Term>;
  private readonly file: string;
  private readonly source: string;
  private readonly keepNames: boolean;
  private readonly functions: Set<string>;

  constructor(options: {
    globals: Map<string, Term>;
    file: string;
    source: string;
    keepNames?: boolean;
    functions: Set<string>;
  }) {
    this.globals = options.globals;
    this.file = options.file;
    this.source = options.source;
    this.keepNames = options.keepNames ?? false;
    this.functions = options.functions;
  }

  private fail(
    code: 'rego_compile_error' | 'rego_unsafe_var_error' | 'rego_type_error',
    message: string,
    term: { loc: Term['loc'] },
  ): never {
    throw new RegoError(code, message, term.loc, this.source);
  }

  private name(name: string, keep: boolean) {
    if (name === '_') return fresh('_');
    return keep && this.keepNames ? name : fresh(name);
  }

  /** Declares the variables of a pattern (`:=` left side, `some`, function arguments). */
  declare(term: Term, scope: Scope, top: boolean, strict: boolean): Term {
    switch (term.type) {
      case 'var': {
        if (term.name === 'input' || term.name === 'data')
          this.fail('rego_compile_error', `variables must not be named ${term.name}`, term);
        if (strict && term.name !== '_' && scope.vars.has(term.name))
          this.fail('rego_compile_error', `var ${term.name} assigned above`, term);
        const id = this.name(term.name, top);
        if (term.name !== '_') scope.vars.set(term.name, id);
        return { ...term, name: id };
      }
      case 'array':
        return { ...term, items: term.items.map((t) => this.declare(t, scope, top, strict)) };
      case 'object':
        return {
          ...term,
          items: term.items.map(
            ([k, v]) => [this.term(k, scope, top), this.declare(v, scope, top, strict)] as [Term, Term],
          ),
        };
      case 'ref':
      case 'call':
      case 'set':
      case 'arraycompr':
      case 'setcompr':
      case 'objectcompr':
        if (strict) this.fail('rego_compile_error', 'cannot assign to a reference or call', term);
        return this.term(term, scope, top);
      default:
        return term;
    }
  }

  term(term: Term, scope: Scope, top: boolean): Term {
    switch (term.type) {
      case 'var': {
        if (term.name === '_') return { ...term, name: fresh('_') };
        const local = scope.lookup(term.name);
        if (local) return { ...term, name: local };
        const global = this.globals.get(term.name);
        if (global) return { ...global, loc: term.loc };
        if (term.name === 'input' || term.name === 'data') return term;
        // First use of a variable bound by unification: it belongs to the innermost scope.
        const id = this.name(term.name, top);
        scope.vars.set(term.name, id);
        return { ...term, name: id };
      }
      case 'ref': {
        const head = this.term(term.head, scope, top);
        const path = term.path.map((p) => this.term(p, scope, top));
        if (head.type === 'ref') return { ...term, head: head.head, path: [...head.path, ...path] };
        return { ...term, head, path };
      }
      case 'array':
      case 'set':
        return { ...term, items: term.items.map((t) => this.term(t, scope, top)) };
      case 'object':
        return {
          ...term,
          items: term.items.map(
            ([k, v]) => [this.term(k, scope, top), this.term(v, scope, top)] as [Term, Term],
          ),
        };
      case 'arraycompr':
      case 'setcompr': {
        const inner = new Scope(scope);
        const body = this.body(term.body, inner, false);
        return { ...term, body, head: this.term(term.head, inner, false) };
      }
      case 'objectcompr': {
        const inner = new Scope(scope);
        const body = this.body(term.body, inner, false);
        return {
          ...term,
          body,
          key: this.term(term.key, inner, false),
          value: this.term(term.value, inner, false),
        };
      }
      case 'call': {
        if (term.fn.length === 1 && (term.fn[0] === 'assign' || term.fn[0] === 'eq') && term.infix)
          return term;
        const fn = this.resolveFn(term);
        return { ...term, fn, args: term.args.map((a) => this.term(a, scope, top)) };
      }
      case 'template':
        return {
          ...term,
          parts: term.parts.map((p) => (typeof p === 'string' ? p : this.term(p, scope, top))),
        };
      default:
        return term;
    }
  }

  private resolveFn(term: Extract<Term, { type: 'call' }>): string[] {
    const [first, ...rest] = term.fn;
    const global = this.globals.get(first!);
    if (global && global.type === 'ref' && global.head.type === 'var') {
      const path = [
        global.head.name,
        ...global.path.map((p) => (p.type === 'string' ? p.value : '?')),
        ...rest,
      ];
      return path;
    }
    const name = term.fn.join('.');
    if (first === 'data') {
      if (!this.functions.has(name) && !this.functions.has(`?${name}`))
        this.fail('rego_type_error', `undefined function ${name}`, term);
      return term.fn;
    }
    const builtin = builtins.get(name);
    if (!builtin) this.fail('rego_type_error', `undefined function ${name}`, term);
    // One extra argument receives the result (`count(xs, n)`); any other count is an arity error.
    if (builtin.arity >= 0 && term.args.length !== builtin.arity && term.args.length !== builtin.arity + 1)
      this.fail(
        'rego_type_error',
        `${name}: arity mismatch: expected ${builtin.arity} arguments, got ${term.args.length}`,
        term,
      );
    return term.fn;
  }

  body(body: Body, scope: Scope, top: boolean): Body {
    return body.map((e) => this.expr(e, scope, top));
  }

  expr(e: Expr, scope: Scope, top: boolean): Expr {
    const withs = e.with.map((w) => ({
      ...w,
      target: this.withTarget(w.target),
      value: this.term(w.value, scope, top),
    }));
    switch (e.kind) {
      case 'some':
        return { ...e, vars: e.vars.map((v) => this.declare(v, scope, top, false)), with: withs };
      case 'somein': {
        const domain = this.term(e.domain, scope, top);
        const key = e.key ? this.declare(e.key, scope, top, false) : null;
        return { ...e, domain, key, value: this.declare(e.value, scope, top, false), with: withs };
      }
      case 'every': {
        const domain = this.term(e.domain, scope, top);
        const inner = new Scope(scope);
        const key = e.key ? this.declare(e.key, inner, false, false) : null;
        const value = this.declare(e.value, inner, false, false);
        return { ...e, domain, key, value, body: this.body(e.body, inner, false), with: withs };
      }
      case 'term': {
        const t = e.term;
        if (t.type === 'call' && t.infix === ':=' && t.fn[0] === 'assign') {
          const rhs = this.term(t.args[1]!, scope, top);
          const lhs = this.declare(t.args[0]!, scope, top, true);
          return { ...e, term: { ...t, args: [lhs, rhs] }, with: withs };
        }
        if (t.type === 'call' && t.infix === '=' && t.fn[0] === 'eq') {
          return {
            ...e,
            term: { ...t, args: [this.term(t.args[0]!, scope, top), this.term(t.args[1]!, scope, top)] },
            with: withs,
          };
        }
        return { ...e, term: this.term(t, scope, top), with: withs };
      }
    }
  }

  private withTarget(target: Term): Term {
    if (target.type === 'var') {
      const global = this.globals.get(target.name);
      if (global) return global;
      return target;
    }
    if (target.type === 'ref' && target.head.type === 'var') {
      const global = this.globals.get(target.head.name);
      if (global && global.type === 'ref')
        return { ...target, head: global.head, path: [...global.path, ...target.path] };
    }
    return target;
  }

  /** Resolves a rule: arguments first, then the body, then the head that reads the body's variables. */
  rule(rule: Rule): Rule {
    const scope = new Scope(null);
    const args = rule.args?.map((a) => this.declare(a, scope, false, false)) ?? null;
    const bodyScope = new Scope(scope);
    const body = this.body(rule.body, bodyScope, false);
    const headTerm = (t: Term | null) => (t ? this.term(t, bodyScope, false) : null);
    const ref = rule.ref.map((t, i) => (i === 0 ? t : this.term(t, bodyScope, false)));
    const key = headTerm(rule.key);
    const value = headTerm(rule.value);
    const elses = rule.elses.map((el) => {
      const s2 = new Scope(scope);
      const b = this.body(el.body, s2, false);
      return { ...el, body: b, value: el.value ? this.term(el.value, s2, false) : null };
    });
    return { ...rule, args, body, ref, key, value, elses };
  }
}

export { Scope };

/** The static prefix of a reference, as names: `data.a.b[x]` is data, a, b. */
export function refPath(term: Term): string[] | null {
  if (term.type !== 'ref' || term.head.type !== 'var') return null;
  const out = [term.head.name];
  for (const p of term.path) {
    if (p.type !== 'string') return out;
    out.push(p.value);
  }
  return out;
}
