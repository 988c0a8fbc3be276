import type { Term } from '../ast.ts';
import { BuiltinError, RegoError } from '../errors.ts';
import type { Evaluator } from '../eval.ts';
import { BigNum, RObject, RSet, typeName, type Value } from '../value.ts';

/** What a builtin may use besides its arguments. */
export type BuiltinContext = {
  now: bigint;
  print: (message: string) => void;
  maxCollection: number;
  cache: Map<string, unknown>;
};

export type BuiltinFn = (args: Value[], ctx: BuiltinContext) => Value | undefined;

/** A builtin: its arity and implementation; `special` ones control their own evaluation (print, walk). */
export type Builtin = {
  arity: number;
  fn: BuiltinFn;
  special?: (
    ev: Evaluator,
    t: Extract<Term, { type: 'call' }>,
    k: (v: Value) => boolean | undefined | void,
  ) => boolean;
};

export const builtins = new Map<string, Builtin>();

/**
 * Registers a builtin. A string it returns counts against the collection budget, one item a character, so
 * a policy cannot grow a string past what the budget allows (doubling a string in a loop exhausts the heap
 * long before it exhausts the step budget).
 */
export function def(name: string, arity: number, fn: BuiltinFn) {
  builtins.set(name, {
    arity,
    fn: (args, ctx) => {
      const out = fn(args, ctx);
      if (typeof out === 'string' && out.length > ctx.maxCollection)
        throw new RegoError(
          'eval_budget_error',
          `${name} produced a string of ${out.length} characters, more than the budget of ${ctx.maxCollection}`,
        );
      return out;
    },
  });
}

export const typeError = (message: string) => new BuiltinError('eval_type_error', message);
export const builtinError = (message: string) => new BuiltinError('eval_builtin_error', message);

function describeType(v: Value) {
  return typeName(v);
}

export function operandError(i: number, want: string, got: Value): BuiltinError {
  return typeError(`operand ${i + 1} must be ${want} but got ${describeType(got)}`);
}

export function str(args: Value[], i: number): string {
  const v = args[i]!;
  if (typeof v !== 'string') throw operandError(i, 'string', v);
  return v;
}
export function num(args: Value[], i: number): number {
  const v = args[i]!;
  if (v instanceof BigNum) return Number(v.big);
  if (typeof v !== 'number') throw operandError(i, 'number', v);
  return v;
}
export function int(args: Value[], i: number): number {
  const n = num(args, i);
  if (!Number.isInteger(n)) throw operandError(i, 'integer', args[i]!);
  return n;
}
export function arr(args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (!Array.isArray(v)) throw operandError(i, 'array', v);
  return v;
}
export function obj(args: Value[], i: number): RObject {
  const v = args[i]!;
  if (!(v instanceof RObject)) throw operandError(i, 'object', v);
  return v;
}
export function set(args: Value[], i: number): RSet {
  const v = args[i]!;
  if (!(v instanceof RSet)) throw operandError(i, 'set', v);
  return v;
}
export function bool(args: Value[], i: number): boolean {
  const v = args[i]!;
  if (typeof v !== 'boolean') throw operandError(i, 'boolean', v);
  return v;
}
/** Members of an array or set. */
export function collection(args: Value[], i: number, want = 'one of {array, set}'): Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.sorted();
  throw typeError(`operand ${i + 1} must be ${want} but got ${describeType(v)}`);
}

/** Refuses to build a collection larger than the evaluation budget allows, before allocating it. */
export function checkSize(n: number, ctx: BuiltinContext, what: string) {
  if (n > ctx.maxCollection)
    throw new RegoError(
      'eval_budget_error',
      `${what} would produce ${n} items, more than the budget of ${ctx.maxCollection}`,
    );
}
