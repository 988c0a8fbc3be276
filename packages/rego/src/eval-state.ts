import type { Body, Term } from './ast.ts';
import type { BuiltinContext } from './builtins/registry.ts';
import type { CompiledModules } from './compiler.ts';
import { RegoError } from './errors.ts';
import { equal, RObject, type Value } from './value.ts';

// The evaluator is one class built in layers, each in its own file:
//   eval-state.ts      bindings, budget, unification (this file)
//   eval-documents.ts  data documents, rules, user functions
//   eval-calls.ts      builtin calls and `with`
//   eval.ts            bodies, expressions, terms, references (the Evaluator)

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
  /** Collects `file\u0000row` of every expression evaluated and every rule head that produced a value. */
  coverage?: Set<string>;
};

export type K = () => boolean | undefined | void;
export type KV = (v: Value) => boolean | undefined | void;

export type Mock = { kind: 'value'; value: Value } | { kind: 'fn'; fn: string[] };

/** What `with` can change: input, parts of data, and functions. Each context has its own rule cache. */
export type Ctx = {
  input: Value | undefined;
  dataPatches: { path: string[]; value: Value }[];
  mocks: Map<string, Mock>;
  /** Rule values by node id (a symbol while one is being computed). */
  cache: Map<number, Value | undefined | symbol>;
};

export const STOP = true;

/** What `single` answers for a term that needs the general path. */
export const multiple: unique symbol = Symbol('multiple');

/** Bindings, budget and unification, shared by every layer of the evaluator. */
export abstract class EvaluatorBase {
  protected readonly compiled: CompiledModules;
  protected readonly env = new Map<string, Value>();
  protected readonly trail: string[] = [];
  protected ctx: Ctx;
  protected readonly data: Value;
  protected readonly strict: boolean;
  protected readonly budget: Budget;
  protected steps = 0;
  protected depth = 0;
  /** Set at the first budget check: a decision that ends before it never reads the clock. */
  protected deadline = 0;

  protected readonly coverage: Set<string> | undefined;

  private readonly options: EvalOptions;
  private builtins: BuiltinContext | undefined;

  constructor(compiled: CompiledModules, options: EvalOptions) {
    this.compiled = compiled;
    this.options = options;
    this.coverage = options.coverage;
    this.data = options.data;
    this.strict = options.strictBuiltinErrors ?? false;
    this.budget = options.budget ? { ...defaultBudget, ...options.budget } : defaultBudget;
    // `with` copies the patches and mocks into a context of its own, so these two are never changed in
    // place and every evaluation can start from the same empty ones.
    this.ctx = {
      input: options.input,
      dataPatches: noPatches,
      mocks: noMocks,
      cache: new Map(),
    };
  }

  /** What builtins may use (the clock, print, a cache), made on the first builtin call that needs it. */
  get builtinCtx(): BuiltinContext {
    this.builtins ??= new EvalBuiltinContext(
      this.options.now,
      this.options.print ?? noPrint,
      this.budget.maxCollection,
    );
    return this.builtins;
  }

  // ---- bindings
  protected bind(name: string, v: Value) {
    this.env.set(name, v);
    this.trail.push(name);
  }
  protected undo(mark: number) {
    while (this.trail.length > mark) this.env.delete(this.trail.pop()!);
  }
  lookup(name: string): Value | undefined {
    return this.env.get(name);
  }

  protected tick() {
    if (++this.steps % 1024 === 0) {
      if (this.steps > this.budget.maxSteps)
        throw new RegoError(
          'eval_budget_error',
          `evaluation exceeded its budget of ${this.budget.maxSteps} steps`,
        );
      // The clock starts at the first check (after 1,024 steps, microseconds in): a decision that ends
      // sooner, as nearly all do, never reads it.
      if (this.deadline === 0) this.deadline = Date.now() + this.budget.maxMillis;
      else if (Date.now() > this.deadline)
        throw new RegoError(
          'eval_budget_error',
          `evaluation exceeded its time budget of ${this.budget.maxMillis} ms`,
        );
    }
  }

  /** Runs a body and calls `k` for each solution, bindings visible through `lookup`. */
  evalQuery(body: Body, k: K): void {
    this.guarded(() => this.evalBody(body, 0, k));
  }

  /** The first value of a term (an entrypoint's document), or undefined. */
  valueOf(t: Term): Value | undefined {
    let out: Value | undefined;
    this.guarded(() =>
      this.evalTerm(t, (v) => {
        out = v;
        return STOP;
      }),
    );
    return out;
  }

  /** Runs an evaluation, turning an exhausted call stack into the budget error it is. */
  protected guarded(run: () => unknown): void {
    try {
      run();
    } catch (error) {
      if (error instanceof RangeError)
        throw new RegoError(
          'eval_budget_error',
          'evaluation nested too deeply (the call stack was exhausted)',
        );
      throw error;
    }
  }

  protected enter(loc: Term['loc']) {
    if (++this.depth > 400)
      throw new RegoError(
        'eval_budget_error',
        'evaluation nested more than 400 rule or function calls deep',
        loc,
      );
  }

  /** Records a location as covered (only when coverage was asked for). */
  protected cover(loc: Term['loc']) {
    this.coverage?.add(`${loc.file}\u0000${loc.row}`);
  }

  // ---- supplied by the layers above
  abstract evalBody(body: Body, i: number, k: K): boolean;
  abstract evalTerm(t: Term, k: KV): boolean;
  protected abstract single(t: Term): Value | undefined | typeof multiple;

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
    if (pa && !pb) {
      const vb = this.single(b);
      if (vb !== multiple) return vb === undefined ? false : this.matchScoped(a, vb, k);
      return this.evalTerm(b, (v) => this.matchScoped(a, v, k));
    }
    if (pb && !pa) {
      const va = this.single(a);
      if (va !== multiple) return va === undefined ? false : this.matchScoped(b, va, k);
      return this.evalTerm(a, (v) => this.matchScoped(b, v, k));
    }
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

  protected unifyItems(as: Term[], bs: Term[], i: number, k: K): boolean {
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

  protected matchItems(items: Term[], v: Value[], i: number, k: K): boolean {
    if (i === items.length) return Boolean(k());
    return this.match(items[i]!, v[i]!, () => this.matchItems(items, v, i + 1, k));
  }

  protected matchEntries(items: [Term, Term][], v: RObject, i: number, k: K): boolean {
    if (i === items.length) return Boolean(k());
    const [kt, vt] = items[i]!;
    return this.evalTerm(kt, (key) => {
      const inner = v.get(key);
      return inner === undefined ? false : this.match(vt, inner, () => this.matchEntries(items, v, i + 1, k));
    });
  }
}

const noPrint = () => {};
const noPatches: Ctx['dataPatches'] = [];
const noMocks: Ctx['mocks'] = new Map();

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

export function displayName(name: string) {
  return name.replace(/\$\d+$/, '');
}
