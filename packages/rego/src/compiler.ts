import type { Body, Module, Rule, Term } from './ast.ts';
import { RegoError } from './errors.ts';
import { reorderBody, reorderTerm } from './reorder.ts';
import { Resolver, refPath, Scope } from './resolver.ts';
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

export { Resolver, Scope };

/** Compiled modules: the rule tree, ready to evaluate. */
export type CompiledModules = {
  root: RuleNode;
  modules: Module[];
  rulesById: CompiledRule[];
  /** User functions by dotted name (data.pkg.f), with their arities. */
  arities: Map<string, number>;
};

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

  // OPA merges every module of a package into one namespace: a rule defined in any file of the package
  // is in scope, by its bare name, in all of them (a policy and its tests in two files, say).
  const packageRules = new Map<string, Set<string>>();
  for (const m of modules) {
    const key = m.pkg.join('.');
    const names = packageRules.get(key) ?? new Set<string>();
    for (const r of m.rules) if (r.ref[0]?.type === 'string') names.add(r.ref[0].value);
    packageRules.set(key, names);
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
    for (const name of packageRules.get(m.pkg.join('.')) ?? []) globals.set(name, pkgRef(name));
    for (const imp of m.imports) {
      const path = imp.path.type === 'var' ? [imp.path.name] : refPath(imp.path);
      if (!path || path[0] === 'future' || path[0] === 'rego') continue;
      const alias = imp.alias ?? path[path.length - 1]!;
      if (path.length === 1 && alias === path[0]) continue;
      globals.set(alias, imp.path.type === 'var' ? imp.path : imp.path);
    }
    const resolver = new Resolver({ globals, file: m.file, source: m.source, functions });
    for (const raw of m.rules) {
      const resolved = resolver.rule(raw);
      const rule = {
        ...resolved,
        body: reorderBody(resolved.body, arities),
        value: resolved.value && reorderTerm(resolved.value, arities),
        key: resolved.key && reorderTerm(resolved.key, arities),
        elses: resolved.elses.map((el) => ({
          ...el,
          body: reorderBody(el.body, arities),
          value: el.value && reorderTerm(el.value, arities),
        })),
      };
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
  return { root, modules, rulesById, arities };
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
