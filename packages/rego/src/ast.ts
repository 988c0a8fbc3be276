import type { Builtin } from './builtins/registry.ts';
import type { Location } from './errors.ts';

/** A Rego term: the values, variables, references, composites, comprehensions and calls of the language. */
export type Term =
  | { type: 'null'; loc: Location }
  | { type: 'boolean'; value: boolean; loc: Location }
  | { type: 'number'; value: number; raw: string; loc: Location }
  | { type: 'string'; value: string; loc: Location }
  | { type: 'var'; name: string; loc: Location }
  | {
      type: 'ref';
      head: Term;
      path: Term[];
      loc: Location;
      /** Filled in on first evaluation: the leading elements of the path that are constant strings. */
      names?: string[];
      /** Filled in on first evaluation of a data reference: the rules its constant names lead to, if any. */
      rules?: { node: unknown; depth: number } | null;
    }
  | { type: 'array'; items: Term[]; loc: Location }
  | { type: 'set'; items: Term[]; loc: Location }
  | { type: 'object'; items: [Term, Term][]; loc: Location }
  | { type: 'arraycompr'; head: Term; body: Body; loc: Location }
  | { type: 'setcompr'; head: Term; body: Body; loc: Location }
  | { type: 'objectcompr'; key: Term; value: Term; body: Body; loc: Location }
  | {
      type: 'call';
      fn: string[];
      fnTerm?: Term;
      args: Term[];
      loc: Location;
      infix?: string;
      /** Filled in on first evaluation: the dotted name and the builtin it names (null: not a builtin). */
      name?: string;
      builtin?: Builtin | null;
      /** Filled in on first call: whether the last argument receives the result (arity checked then). */
      hasOut?: boolean;
    }
  | { type: 'template'; parts: (string | Term)[]; loc: Location };

export type With = { target: Term; value: Term; loc: Location };

/** One expression of a body. */
export type Expr =
  | { kind: 'term'; term: Term; negated: boolean; with: With[]; loc: Location }
  | { kind: 'some'; vars: Term[]; loc: Location; with: With[]; negated: boolean }
  | {
      kind: 'somein';
      key: Term | null;
      value: Term;
      domain: Term;
      loc: Location;
      with: With[];
      negated: boolean;
    }
  | {
      kind: 'every';
      key: Term | null;
      value: Term;
      domain: Term;
      body: Body;
      loc: Location;
      with: With[];
      negated: boolean;
    };

export type Body = Expr[];

/**
 * A rule. `ref` is the head reference inside the package (`p`, `p.q[x]`); `key` is set for partial-set
 * (`contains`) rules; `args` for functions.
 */
export type Rule = {
  ref: Term[];
  args: Term[] | null;
  key: Term | null;
  value: Term | null;
  assign: boolean;
  kind: 'complete' | 'multi' | 'function';
  isDefault: boolean;
  body: Body;
  elses: { value: Term | null; body: Body; loc: Location }[];
  loc: Location;
  module: Module;
  annotations?: Record<string, unknown>;
};

export type Import = { path: Term; alias: string | null; loc: Location };

export type Module = {
  file: string;
  source: string;
  pkg: string[];
  imports: Import[];
  rules: Rule[];
  regoVersion: 'v0' | 'v1';
};

export const loc0: Location = { file: '', row: 0, col: 0 };

export const v = (name: string, loc: Location = loc0): Term => ({ type: 'var', name, loc });
export const s = (value: string, loc: Location = loc0): Term => ({ type: 'string', value, loc });
