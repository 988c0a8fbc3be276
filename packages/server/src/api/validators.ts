import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const common: Options = { allErrors: true, removeAdditional: false, useDefaults: true, strict: false };

// Bodies are typed JSON: a string where a number belongs is an error, never coerced.
const bodyAjv = addFormats.default(new Ajv({ ...common, coerceTypes: false }));
// Query strings and path parameters arrive as text and are coerced to the declared types.
const textAjv = addFormats.default(new Ajv({ ...common, coerceTypes: 'array' }));

/** Fastify's validator compiler with strict bodies and coerced query strings, unknown fields always refused. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : textAjv;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};

/** A validator for a body schema outside a route (the MCP tools take manifests too), as strict as a route's. */
export const compileBodySchema = (schema: object) => bodyAjv.compile(schema);
