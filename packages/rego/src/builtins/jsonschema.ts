/**
 * json.verify_schema and json.match_schema, validated by Ajv (JSON Schema draft-07). Errors carry the
 * fields and wording OPA's gojsonschema gives them: {error, type, field, desc}, the field a dotted path
 * or "(root)".
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { fromJSON, RObject, toJSON, type Value } from '../value.ts';
import { builtinError, def, operandError } from './registry.ts';

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
/** Compiled schemas by their JSON text: policies check many documents against a few schemas. */
const compiled = new Map<string, ValidateFunction>();

function jsonOf(v: Value, i: number, what: string): unknown {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v);
    } catch (error) {
      throw builtinError(`${what} is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (v instanceof RObject || typeof v === 'boolean') return toJSON(v);
  throw operandError(i, 'one of {string, object, boolean}', v);
}

function compile(schema: unknown): ValidateFunction {
  const key = JSON.stringify(schema);
  let fn = compiled.get(key);
  if (!fn) {
    fn = ajv.compile(schema as object);
    if (compiled.size > 256) compiled.clear();
    compiled.set(key, fn);
  }
  return fn;
}

const typeOf = (v: unknown) =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'array'
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? 'integer'
          : 'number'
        : typeof v;

function at(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined;
  }
  return cur;
}

/** One Ajv error in gojsonschema's terms. */
function describe(e: ErrorObject, doc: unknown): { type: string; field: string; desc: string } {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const field = path.length ? path.join('.') : '(root)';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return {
        type: 'invalid_type',
        field,
        desc: `Invalid type. Expected: ${p.type}, given: ${typeOf(at(doc, e.instancePath))}`,
      };
    case 'required':
      return { type: 'required', field, desc: `${p.missingProperty} is required` };
    case 'additionalProperties':
      return {
        type: 'additional_property_not_allowed',
        field,
        desc: `Additional property ${p.additionalProperty} is not allowed`,
      };
    case 'enum':
      return {
        type: 'enum',
        field,
        desc: `${field} must be one of the following: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'const':
      return { type: 'const', field, desc: `${field} does not match: ${JSON.stringify(p.allowedValue)}` };
    case 'minimum':
      return { type: 'number_gte', field, desc: `Must be greater than or equal to ${p.limit}` };
    case 'maximum':
      return { type: 'number_lte', field, desc: `Must be less than or equal to ${p.limit}` };
    case 'exclusiveMinimum':
      return { type: 'number_gt', field, desc: `Must be greater than ${p.limit}` };
    case 'exclusiveMaximum':
      return { type: 'number_lt', field, desc: `Must be less than ${p.limit}` };
    case 'multipleOf':
      return { type: 'multiple_of', field, desc: `Must be a multiple of ${p.multipleOf}` };
    case 'minLength':
      return { type: 'string_gte', field, desc: `String length must be greater than or equal to ${p.limit}` };
    case 'maxLength':
      return { type: 'string_lte', field, desc: `String length must be less than or equal to ${p.limit}` };
    case 'pattern':
      return { type: 'pattern', field, desc: `Does not match pattern '${p.pattern}'` };
    case 'format':
      return { type: 'format', field, desc: `Does not match format '${p.format}'` };
    case 'minItems':
      return { type: 'array_min_items', field, desc: `Array must have at least ${p.limit} items` };
    case 'maxItems':
      return { type: 'array_max_items', field, desc: `Array must have at most ${p.limit} items` };
    case 'uniqueItems':
      return { type: 'unique', field, desc: 'array items must be unique' };
    default:
      return { type: e.keyword, field, desc: e.message ?? `does not satisfy ${e.keyword}` };
  }
}

/** The schema's problem in words, or null when Ajv accepts it. */
function schemaProblem(schema: unknown): string | null {
  try {
    compile(schema);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

def('json.verify_schema', 1, (args) => {
  const problem = schemaProblem(jsonOf(args[0]!, 0, 'the schema'));
  return [problem === null, problem];
});

def('json.match_schema', 2, (args) => {
  const doc = jsonOf(args[0]!, 0, 'the document');
  const schema = jsonOf(args[1]!, 1, 'the schema');
  const problem = schemaProblem(schema);
  if (problem) throw builtinError(`json.match_schema: ${problem}`);
  const validate = compile(schema);
  if (validate(doc)) return [true, []];
  return [
    false,
    fromJSON(
      (validate.errors ?? []).map((e) => {
        const d = describe(e, doc);
        return { error: `${d.field}: ${d.desc}`, type: d.type, field: d.field, desc: d.desc };
      }),
    ),
  ];
});
