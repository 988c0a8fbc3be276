/** Where in which file a problem is. */
export type Location = { file: string; row: number; col: number };

/** OPA's error codes, so callers and the conformance suite can branch on them. */
export type RegoErrorCode =
  | 'rego_parse_error'
  | 'rego_compile_error'
  | 'rego_type_error'
  | 'rego_unsafe_var_error'
  | 'rego_recursion_error'
  | 'eval_conflict_error'
  | 'eval_type_error'
  | 'eval_builtin_error'
  | 'eval_budget_error'
  | 'eval_cancel_error';

/** Every failure of the engine: a code, a message, and a location with a caret line when known. */
export class RegoError extends Error {
  readonly code: RegoErrorCode;
  readonly location?: Location;
  readonly source?: string;
  constructor(code: RegoErrorCode, message: string, location?: Location, source?: string) {
    super(RegoError.format(code, message, location, source));
    this.name = 'RegoError';
    this.code = code;
    this.location = location;
    this.source = source;
  }

  static format(code: string, message: string, location?: Location, source?: string): string {
    if (!location) return `${code}: ${message}`;
    let out = `${location.file}:${location.row}:${location.col}: ${code}: ${message}`;
    const line = source?.split('\n')[location.row - 1];
    if (line !== undefined) out += `\n\t${line}\n\t${' '.repeat(Math.max(0, location.col - 1))}^`;
    return out;
  }
}

/** Raised by builtins; in non-strict mode it makes the expression undefined, as OPA does. */
export class BuiltinError extends Error {
  readonly code: 'eval_builtin_error' | 'eval_type_error';
  constructor(code: 'eval_builtin_error' | 'eval_type_error', message: string) {
    super(message);
    this.code = code;
  }
}
