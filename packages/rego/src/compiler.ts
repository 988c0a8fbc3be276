import type { Body, Expr, Module, Rule, Term } from './ast.ts';
import { builtins } from './builtins/index.ts';
import { RegoError } from './errors.ts';
import { checkSafety } from './safety.ts';
import type { Value } from './value.ts';

/** A rule after name resolution, attached to the node of the rule tree its head's static prefix names. */
export type CompiledRule = Rule & {
  id: number;
  /** The full head path from the data root: static strings then terms with variables. */
  path: Term[];
  /** How many leading path elements are static strings (the node's depth). */
  staticLength: number;
};

/** A node of the virtual document tree: rules attached here and child namespaces. */
export type RuleNode = {
  id: number;
  path: string[];
  rules: CompiledRule[];
  defaultRule: CompiledRule | null;
  children: Map<string, RuleNode>;
  kind: 'none' | 'complete' | 'multi' | 'function' | 'object';
  /** The value of a node that depends on nothing, computed on first use. */
  constant?: { value: Value | undefined };
};

/** Compiled modules: the rule tree, ready to evaluate. */
export type CompiledModules = {
  root: RuleNode;
  modules: Module[];
  rulesById: CompiledRule[];
};

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

function refPath(term: Term): string[] | null {
  if (term.type !== 'ref' || term.head.type !== 'var') return null;
  const out = [term.head.name];
  for (const p of term.path) {
    if (p.type !== 'string') return out;
    out.push(p.value);
  }
  return out;
}

function newNode(path: string[], ids: { n: number }): RuleNode {
  return { id: ids.n++, path, rules: [], defaultRule: null, children: new Map(), kind: 'none' };
}

/** Compiles parsed modules into a rule tree, resolving names and checking what OPA's compiler checks. */
export function compileModules(modules: Module[]): CompiledModules {
  const ids = { n: 0 };
  const root = newNode([], ids);
  const rulesById: CompiledRule[] = [];
  // Function names and arities, for call resolution and safety across modules.
  const functions = new Set<string>();
  const arities = new Map<string, number>();
  for (const m of modules)
    for (const r of m.rules) {
      if (!r.args) continue;
      const name = ['data', ...m.pkg, ...r.ref.map((t) => (t.type === 'string' ? t.value : '?'))].join('.');
      functions.add(name);
      arities.set(name, r.args.length);
    }

  for (const m of modules) {
    const globals = new Map<string, Term>();
    const pkgRef = (name: string): Term => ({
      type: 'ref',
      head: { type: 'var', name: 'data', loc: { file: m.file, row: 0, col: 0 } },
      path: [...m.pkg, name].map(
        (p) => ({ type: 'string', value: p, loc: { file: m.file, row: 0, col: 0 } }) as Term,
      ),
      loc: { file: m.file, row: 0, col: 0 },
    });
    for (const r of m.rules) {
      const first = r.ref[0];
      if (first?.type === 'string') globals.set(first.value, pkgRef(first.value));
    }
    for (const imp of m.imports) {
      const path = imp.path.type === 'var' ? [imp.path.name] : refPath(imp.path);
      if (!path || path[0] === 'future' || path[0] === 'rego') continue;
      const alias = imp.alias ?? path[path.length - 1]!;
      if (path.length === 1 && alias === path[0]) continue;
      globals.set(alias, imp.path.type === 'var' ? imp.path : imp.path);
    }
    const resolver = new Resolver({ globals, file: m.file, source: m.source, functions });
    for (const raw of m.rules) {
      const rule = resolver.rule(raw);
      checkSafety(rule, arities);
      const path: Term[] = [
        ...m.pkg.map((p) => ({ type: 'string', value: p, loc: rule.loc }) as Term),
        ...rule.ref,
      ];
      let staticLength = 0;
      while (staticLength < path.length && path[staticLength]!.type === 'string') staticLength++;
      const compiled: CompiledRule = { ...rule, id: rulesById.length, path, staticLength };
      rulesById.push(compiled);
      let node = root;
      for (let i = 0; i < staticLength; i++) {
        const seg = (path[i] as { value: string }).value;
        let child = node.children.get(seg);
        if (!child) {
          child = newNode([...node.path, seg], ids);
          node.children.set(seg, child);
        }
        node = child;
      }
      const kind: RuleNode['kind'] =
        rule.kind === 'function'
          ? 'function'
          : rule.kind === 'multi'
            ? staticLength === path.length
              ? 'multi'
              : 'object'
            : staticLength === path.length
              ? 'complete'
              : 'object';
      const fail = (message: string): never => {
        throw new RegoError('rego_type_error', message, rule.loc, m.source);
      };
      if (rule.isDefault) {
        if (node.defaultRule) fail(`multiple default rules data.${node.path.join('.')} found`);
        if (kind === 'multi' || kind === 'object')
          fail('default rules must not have a variable in the head reference');
        node.defaultRule = compiled;
        if (node.kind === 'none') node.kind = kind;
        else if (node.kind !== kind) fail(`conflicting rules data.${node.path.join('.')} found`);
        continue;
      }
      if (node.kind === 'none') node.kind = kind;
      else if (node.kind !== kind) {
        // Ref-head rules may sit beside object-producing rules at the same node.
        const objectish = (k: string) => k === 'object' || k === 'complete';
        if (!(objectish(node.kind) && objectish(kind) && (node.kind === 'object' || kind === 'object')))
          fail(`conflicting rules data.${node.path.join('.')} found`);
        if (kind === 'object') node.kind = 'object';
      }
      if (kind === 'function') {
        const arity = rule.args!.length;
        const other = node.rules.find((r) => r.args && r.args.length !== arity);
        if (other)
          fail(`conflicting rules data.${node.path.join('.')} found: functions with different arities`);
      }
      node.rules.push(compiled);
    }
  }
  checkTree(root, modules);
  checkRecursion(root, rulesById);
  return { root, modules, rulesById };
}

function checkTree(node: RuleNode, _modules: Module[]) {
  if (node.kind === 'complete' || node.kind === 'multi' || node.kind === 'function') {
    for (const child of node.children.values()) {
      if (child.rules.length > 0 || child.defaultRule) {
        const r = child.rules[0] ?? child.defaultRule!;
        if (
          node.kind !== 'complete' ||
          node.rules.some((x) => x.staticLength === x.path.length && !x.isDefault && false)
        )
          throw new RegoError(
            'rego_type_error',
            `rule data.${node.path.join('.')} conflicts with data.${child.path.join('.')}`,
            r.loc,
            r.module.source,
          );
      }
    }
  }
  for (const child of node.children.values()) checkTree(child, _modules);
}

/** Data paths each rule reads: static prefixes of data refs and called functions. */
function dependencies(rule: CompiledRule): string[][] {
  const out: string[][] = [];
  const visitTerm = (t: Term | null | undefined): void => {
    if (!t) return;
    switch (t.type) {
      case 'ref': {
        if (t.head.type === 'var' && t.head.name === 'data') {
          const p: string[] = [];
          let scalarStop = false;
          for (const seg of t.path) {
            if (seg.type !== 'string') {
              // A number, boolean or null cannot name a package or rule.
              scalarStop = seg.type === 'number' || seg.type === 'boolean' || seg.type === 'null';
              break;
            }
            p.push(seg.value);
          }
          if (!scalarStop) out.push(p);
        } else visitTerm(t.head);
        t.path.forEach(visitTerm);
        return;
      }
      case 'call':
        if (t.fn[0] === 'data') out.push(t.fn.slice(1));
        t.args.forEach(visitTerm);
        return;
      case 'array':
      case 'set':
        t.items.forEach(visitTerm);
        return;
      case 'object':
        for (const [k, v] of t.items) {
          visitTerm(k);
          visitTerm(v);
        }
        return;
      case 'arraycompr':
      case 'setcompr':
        visitTerm(t.head);
        visitBody(t.body);
        return;
      case 'objectcompr':
        visitTerm(t.key);
        visitTerm(t.value);
        visitBody(t.body);
        return;
      case 'template':
        for (const p of t.parts) if (typeof p !== 'string') visitTerm(p);
        return;
      default:
        return;
    }
  };
  const visitBody = (b: Body) => {
    for (const e of b) {
      for (const w of e.with) visitTerm(w.value);
      if (e.kind === 'term') visitTerm(e.term);
      else if (e.kind === 'somein') {
        visitTerm(e.domain);
      } else if (e.kind === 'every') {
        visitTerm(e.domain);
        visitBody(e.body);
      }
    }
  };
  visitBody(rule.body);
  for (const el of rule.elses) {
    visitBody(el.body);
    visitTerm(el.value);
  }
  visitTerm(rule.value);
  visitTerm(rule.key);
  rule.path.forEach((p, i) => i >= rule.staticLength && visitTerm(p));
  return out;
}

function checkRecursion(root: RuleNode, rules: CompiledRule[]) {
  // Map each rule to the rule nodes its dependencies may reach.
  const nodeOf = new Map<number, RuleNode>();
  const allNodes: RuleNode[] = [];
  const walk = (n: RuleNode) => {
    if (n.rules.length || n.defaultRule) allNodes.push(n);
    for (const r of n.rules) nodeOf.set(r.id, n);
    n.children.forEach(walk);
  };
  walk(root);
  const edges = new Map<number, Set<number>>();
  for (const n of allNodes) {
    const targets = new Set<number>();
    for (const r of n.rules)
      for (const dep of dependencies(r)) {
        for (const m of allNodes) {
          const a = m.path;
          const prefix =
            a.length <= dep.length ? a.every((s, i) => dep[i] === s) : dep.every((s, i) => a[i] === s);
          if (prefix) targets.add(m.id);
        }
      }
    edges.set(n.id, targets);
  }
  const byId = new Map(allNodes.map((n) => [n.id, n]));
  const state = new Map<number, 1 | 2>();
  const stack: number[] = [];
  const visit = (id: number) => {
    state.set(id, 1);
    stack.push(id);
    for (const t of edges.get(id) ?? []) {
      if (state.get(t) === 1) {
        const cycle = [...stack.slice(stack.indexOf(t)), t].map((x) => `data.${byId.get(x)!.path.join('.')}`);
        const r = byId.get(t)!.rules[0]!;
        throw new RegoError(
          'rego_recursion_error',
          `rule ${cycle[0]} is recursive: ${cycle.join(' -> ')}`,
          r.loc,
          r.module.source,
        );
      }
      if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(id, 2);
  };
  for (const n of allNodes) if (!state.has(n.id)) visit(n.id);
  void rules;
  void nodeOf;
}
