import type { Body, Module, Term } from './ast.ts';
import { type CompiledModules, compileModules, Resolver, Scope } from './compiler.ts';
import { RegoError } from './errors.ts';
import { type Budget, Evaluator } from './eval.ts';
import { parseModule, parseQuery } from './parser.ts';
import { reorderBody } from './reorder.ts';
import { fromJSON, RObject, toJSON, type Value } from './value.ts';

export { builtins } from './builtins/index.ts';
export { type CoverageReport, coverageReport, type FileCoverage } from './coverage.ts';
export { BuiltinError, RegoError, type RegoErrorCode } from './errors.ts';
export { parseModule, parseQuery } from './parser.ts';
export { fromJSON, toJSON, type Value } from './value.ts';

/** A Rego source file. */
export type Source = { file: string; source: string };

export type CompileOptions = { regoVersion?: 'v0' | 'v1' };

export type EvaluateOptions = {
  /** The input document, as JSON. */
  input?: unknown;
  /** Base documents under `data`, as JSON (or a value from `toValue` to skip conversion). */
  data?: unknown;
  /** Raise builtin errors instead of treating them as undefined, as OPA's strict mode does. */
  strictBuiltinErrors?: boolean;
  budget?: Partial<Budget>;
  /** Receives the output of `print()` calls. */
  print?: (message: string) => void;
  /** Fixes time.now_ns (nanoseconds) for reproducible decisions. */
  nowNs?: bigint;
  /** Collects what the evaluation covered, for `coverageReport`. */
  coverage?: Set<string>;
};

/** One solution of a query: its variables' values as JSON. */
export type Bindings = Record<string, unknown>;

export type TestResult = {
  name: string;
  package: string;
  /** The file that defines the test. */
  file: string;
  /** `skip` is a `todo_test_` rule, which `opa test` lists as skipped. */
  outcome: 'pass' | 'fail' | 'error' | 'skip';
  error?: string;
  /** What the test printed with print(). */
  output: string[];
  durationMs: number;
};

/** The base data of an evaluation given none (values are never changed once made, so one will do). */
const noData = new RObject();

/** Converts JSON once, for data reused across many evaluations. */
export function toValue(json: unknown): Value {
  return fromJSON(json);
}

/**
 * Parses and compiles modules once; evaluate many times.
 * @example
 * const policy = compile([{ file: 'net.rego', source }]);
 * policy.evaluate('data.microapp.network.deny', { input }); // → ['deployment denied: …']
 */
export function compile(sources: Source[], options: CompileOptions = {}): PreparedPolicy {
  const modules = sources.map((s) => parseModule(s.source, s.file, { regoVersion: options.regoVersion }));
  return new PreparedPolicy(compileModules(modules));
}

/** Compiled policy modules. Evaluation never does I/O. */
export class PreparedPolicy {
  readonly compiled: CompiledModules;
  private readonly queries = new Map<string, { body: Body; vars: string[] }>();
  /** Entrypoints, prepared: a document's reference when it is a plain path, else the query that reads it. */
  private readonly entrypoints = new Map<string, { query: string; ref: Term | null }>();
  private readonly functions: Set<string>;
  private dataCache: { json: unknown; value: Value } | null = null;

  constructor(compiled: CompiledModules) {
    this.compiled = compiled;
    this.functions = new Set();
    for (const r of compiled.rulesById)
      if (r.args)
        this.functions.add(['data', ...r.path.map((p) => (p.type === 'string' ? p.value : '?'))].join('.'));
  }

  get modules(): Module[] {
    return this.compiled.modules;
  }

  #calls: Set<string> | null = null;
  /**
   * The names of the functions the modules call, as written (`time.now_ns`, `lower`, `data.lib.f`): a
   * caller that keeps decisions asks whether any of them reads the clock or a random source.
   */
  get calls(): ReadonlySet<string> {
    if (!this.#calls) {
      const calls = new Set<string>();
      const seen = new Set<object>();
      const walk = (node: unknown): void => {
        if (typeof node !== 'object' || node === null || seen.has(node)) return;
        seen.add(node);
        if (Array.isArray(node)) for (const item of node) walk(item);
        else {
          const term = node as { type?: unknown; fn?: unknown };
          if (term.type === 'call' && Array.isArray(term.fn)) calls.add(term.fn.join('.'));
          // Not what evaluation fills in (a call's builtin, a reference's rules) nor a rule's module.
          for (const [key, value] of Object.entries(node))
            if (key !== 'loc' && key !== 'builtin' && key !== 'rules' && key !== 'module') walk(value);
        }
      };
      walk(this.compiled.rulesById);
      this.#calls = calls;
    }
    return this.#calls;
  }

  private prepareQuery(query: string): { body: Body; vars: string[] } {
    let q = this.queries.get(query);
    if (!q) {
      const parsed = parseQuery(query);
      const scope = new Scope(null);
      const resolver = new Resolver({
        globals: new Map(),
        file: 'query',
        source: query,
        keepNames: true,
        functions: this.functions,
      });
      const body = reorderBody(resolver.body(parsed, scope, true), this.compiled.arities);
      const vars = [...scope.vars.values()].filter((v) => !v.startsWith('_') && !v.includes('$'));
      q = { body, vars };
      this.queries.set(query, q);
    }
    return q;
  }

  private evaluator(options: EvaluateOptions): Evaluator {
    let data: Value;
    if (options.data === undefined) data = noData;
    else if (options.data instanceof RObject) data = options.data;
    else if (this.dataCache && this.dataCache.json === options.data) data = this.dataCache.value;
    else {
      data = fromJSON(options.data);
      this.dataCache = { json: options.data, value: data };
    }
    return new Evaluator(this.compiled, {
      input: options.input === undefined ? undefined : fromJSON(options.input),
      data,
      strictBuiltinErrors: options.strictBuiltinErrors,
      budget: options.budget,
      print: options.print,
      now: options.nowNs,
      coverage: options.coverage,
    });
  }

  /** All solutions of a query such as `data.pkg.allow` or `x := data.pkg.deny[_]`, as bindings of its variables. */
  query(query: string, options: EvaluateOptions = {}): Bindings[] {
    const { body, vars } = this.prepareQuery(query);
    const ev = this.evaluator(options);
    const out: Bindings[] = [];
    ev.evalQuery(body, () => {
      const b: Bindings = {};
      for (const v of vars) {
        const value = ev.lookup(v);
        if (value !== undefined) b[v] = toJSON(value);
      }
      out.push(b);
      return false;
    });
    return out;
  }

  /**
   * The value of one document: `data.microapp.deploy.deny` or an entrypoint `microapp/deploy/deny`.
   * Undefined when the document is undefined.
   */
  evaluate(entrypoint: string, options: EvaluateOptions = {}): unknown {
    let prepared = this.entrypoints.get(entrypoint);
    if (!prepared) {
      const path = entrypoint.startsWith('data')
        ? entrypoint
        : `data.${entrypoint
            .replace(/^\/+/, '')
            .split('/')
            .map((s) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? s : JSON.stringify(s)))
            .join('.')}`;
      const query = `result = ${path}`;
      // A document named by a plain path (nearly every entrypoint) is read directly, without a query's
      // unification and bindings.
      const { body } = this.prepareQuery(query);
      const only = body.length === 1 ? body[0]! : null;
      const term = only?.kind === 'term' && only.with.length === 0 ? only.term : null;
      const ref = term?.type === 'call' && term.infix === '=' ? term.args[1]! : null;
      const plain =
        ref?.type === 'ref' &&
        ref.head.type === 'var' &&
        ref.head.name === 'data' &&
        ref.path.every((p) => p.type === 'string');
      prepared = { query, ref: plain ? ref : null };
      this.entrypoints.set(entrypoint, prepared);
    }
    if (prepared.ref) {
      const value = this.evaluator(options).valueOf(prepared.ref);
      return value === undefined ? undefined : toJSON(value);
    }
    return this.query(prepared.query, options)[0]?.result;
  }

  /**
   * Runs every `test_` rule, as `opa test` does: `filter` is matched against the full name
   * (`data.pkg.test_x`), `todo_test_` rules are listed as skipped, and what a test prints is kept.
   */
  test(options: EvaluateOptions & { filter?: RegExp } = {}): TestResult[] {
    const results: TestResult[] = [];
    // A test defined more than once is one test per definition, named test_x, test_x#01, … as opa test names them.
    const definitions = new Map<string, number>();
    for (const rule of this.compiled.rulesById) {
      const name = rule.path
        .slice(rule.module.pkg.length)
        .map((p) => (p.type === 'string' ? p.value : ''))
        .join('.');
      const todo = /^todo_test_/.test(name);
      if ((!/^test_/.test(name) && !todo) || rule.args || rule.kind !== 'complete' || rule.isDefault)
        continue;
      const ref = `data.${rule.module.pkg.join('.')}.${name}`;
      const seen = definitions.get(ref) ?? 0;
      definitions.set(ref, seen + 1);
      const shownName = seen === 0 ? name : `${name}#${String(seen).padStart(2, '0')}`;
      if (options.filter && !options.filter.test(`data.${rule.module.pkg.join('.')}.${shownName}`)) continue;
      const base = { name: shownName, package: rule.module.pkg.join('.'), file: rule.module.file };
      if (todo) {
        results.push({ ...base, outcome: 'skip', output: [], durationMs: 0 });
        continue;
      }
      const output: string[] = [];
      const print = (message: string) => {
        output.push(message);
        options.print?.(message);
      };
      const started = performance.now();
      try {
        const value = this.evaluator({ ...options, print }).definitionValue(rule);
        const outcome = value === true ? 'pass' : 'fail';
        results.push({ ...base, outcome, output, durationMs: performance.now() - started });
      } catch (error) {
        results.push({
          ...base,
          outcome: 'error',
          error: (error as Error).message,
          output,
          durationMs: performance.now() - started,
        });
      }
    }
    return results;
  }
}

export function isRegoError(e: unknown): e is RegoError {
  return e instanceof RegoError;
}
