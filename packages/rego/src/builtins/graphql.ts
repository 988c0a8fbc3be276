/**
 * graphql.* builtins. Parsing and validation are graphql-js's; what a policy sees is the AST OPA returns
 * (gqlparser's Go structs as JSON, without positions, nulls and empty lists), built by graphql-ast.ts.
 * OPA's schema loader is more lenient than graphql-js in two ways, and so is this one: a schema may extend
 * a type it never defines, and needs no Query type.
 */
import {
  buildASTSchema,
  type DefinitionNode,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  Lexer,
  parse,
  Source,
  specifiedRules,
  TokenKind,
  validate,
  validateSchema,
} from 'graphql';
import { fromJSON, RObject, toJSON, type Value } from '../value.ts';
import { printDocument, queryAst, schemaAst } from './graphql-ast.ts';
import { builtinError, def, operandError } from './registry.ts';

const executable = new Set<string>([Kind.OPERATION_DEFINITION, Kind.FRAGMENT_DEFINITION]);

/** "MSG in GraphQL string at location L:C", as OPA words it. */
function located(error: unknown, where = 'GraphQL string'): Error {
  if (!(error instanceof GraphQLError)) return error as Error;
  const message = error.message.replace(/^Syntax Error: /, '').replace(/\.$/, '');
  const at = error.locations?.[0];
  return new Error(at ? `${message} in ${where} at location ${at.line}:${at.column}` : message);
}

function isEmpty(text: string): boolean {
  try {
    return new Lexer(new Source(text)).advance().kind === TokenKind.EOF;
  } catch {
    return false;
  }
}

function parseDocument(text: string, wanted: 'query' | 'schema'): DocumentNode {
  let doc: DocumentNode;
  try {
    doc = parse(text, { allowLegacyFragmentVariables: true });
  } catch (error) {
    // A document of nothing but blanks and comments is an empty document to OPA, not an error.
    if (isEmpty(text)) return { kind: Kind.DOCUMENT, definitions: [] };
    throw located(error);
  }
  const stray = doc.definitions.find((d) => executable.has(d.kind) !== (wanted === 'query'));
  if (stray) {
    const at = stray.loc?.startToken;
    const what = wanted === 'query' ? 'a type system definition' : 'an operation or fragment';
    throw new Error(
      `Unexpected ${what} in a GraphQL ${wanted} in GraphQL string at location ${at?.line}:${at?.column}`,
    );
  }
  return doc;
}

/** A document from a string, or from an AST object as the parse builtins return it. */
function documentOf(v: Value, wanted: 'query' | 'schema'): DocumentNode {
  if (typeof v === 'string') return parseDocument(v, wanted);
  if (v instanceof RObject) return parseDocument(printDocument(toJSON(v), wanted), wanted);
  throw new Error(`a GraphQL ${wanted} must be a string or an object`);
}

const extensionOf: Record<string, DefinitionNode['kind']> = {
  [Kind.OBJECT_TYPE_EXTENSION]: Kind.OBJECT_TYPE_DEFINITION,
  [Kind.INTERFACE_TYPE_EXTENSION]: Kind.INTERFACE_TYPE_DEFINITION,
  [Kind.UNION_TYPE_EXTENSION]: Kind.UNION_TYPE_DEFINITION,
  [Kind.ENUM_TYPE_EXTENSION]: Kind.ENUM_TYPE_DEFINITION,
  [Kind.INPUT_OBJECT_TYPE_EXTENSION]: Kind.INPUT_OBJECT_TYPE_DEFINITION,
  [Kind.SCALAR_TYPE_EXTENSION]: Kind.SCALAR_TYPE_DEFINITION,
};

/** As OPA's loader does: the first extension of a type nobody defines becomes its definition. */
function defineExtendedTypes(doc: DocumentNode): DocumentNode {
  const defined = new Set<string>();
  for (const d of doc.definitions)
    if ('name' in d && d.name && !(d.kind in extensionOf)) defined.add(d.name.value);
  const definitions = doc.definitions.map((d) => {
    const kind = extensionOf[d.kind];
    if (!kind || !('name' in d) || !d.name || defined.has(d.name.value)) return d;
    defined.add(d.name.value);
    return { ...d, kind } as DefinitionNode;
  });
  return { ...doc, definitions };
}

const notRequired = (e: GraphQLError) => !/^Query root type must be provided/.test(e.message);

function buildSchema(doc: DocumentNode): GraphQLSchema {
  let schema: GraphQLSchema;
  try {
    schema = buildASTSchema(defineExtendedTypes(doc));
  } catch (error) {
    throw located(error);
  }
  const problem = validateSchema(schema).find(notRequired);
  if (problem) throw located(problem);
  return schema;
}

function checkQuery(schema: GraphQLSchema, query: DocumentNode) {
  if (query.definitions.length === 0) return;
  const problem = validate(schema, query, specifiedRules)[0];
  if (problem) throw located(problem, 'GraphQL query string');
}

/** Runs `fn`, turning any GraphQL failure into the builtin's error, named as OPA names it. */
function attempt<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw builtinError(`${name}: ${(error as Error).message}`);
  }
}

function stringOrObject(args: Value[], i: number) {
  const v = args[i]!;
  if (typeof v !== 'string' && !(v instanceof RObject)) throw operandError(i, 'one of {string, object}', v);
}

def('graphql.parse_query', 1, (args) => {
  if (typeof args[0] !== 'string') throw operandError(0, 'string', args[0]!);
  const text = args[0];
  return fromJSON(attempt('graphql.parse_query', () => queryAst(parseDocument(text, 'query'))));
});

def('graphql.parse_schema', 1, (args) => {
  if (typeof args[0] !== 'string') throw operandError(0, 'string', args[0]!);
  const text = args[0];
  return fromJSON(attempt('graphql.parse_schema', () => schemaAst(parseDocument(text, 'schema'))));
});

def('graphql.parse', 2, (args) => {
  stringOrObject(args, 0);
  stringOrObject(args, 1);
  return attempt('graphql.parse', () => {
    const query = documentOf(args[0]!, 'query');
    const schemaDoc = documentOf(args[1]!, 'schema');
    checkQuery(buildSchema(schemaDoc), query);
    return [fromJSON(queryAst(query)), fromJSON(schemaAst(schemaDoc))];
  });
});

/** [valid, query AST, schema AST]; [false, {}, {}] for anything that does not parse or validate. */
def('graphql.parse_and_verify', 2, (args) => {
  try {
    const query = documentOf(args[0]!, 'query');
    const schemaDoc = documentOf(args[1]!, 'schema');
    checkQuery(buildSchema(schemaDoc), query);
    return [true, fromJSON(queryAst(query)), fromJSON(schemaAst(schemaDoc))];
  } catch {
    return [false, new RObject(), new RObject()];
  }
});

def('graphql.is_valid', 2, (args) => {
  try {
    checkQuery(buildSchema(documentOf(args[1]!, 'schema')), documentOf(args[0]!, 'query'));
    return true;
  } catch {
    return false;
  }
});

def('graphql.schema_is_valid', 1, (args) => {
  try {
    buildSchema(documentOf(args[0]!, 'schema'));
    return true;
  } catch {
    return false;
  }
});
