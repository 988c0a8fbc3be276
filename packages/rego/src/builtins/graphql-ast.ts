/**
 * GraphQL documents in the shape OPA's graphql builtins return: gqlparser's AST as JSON, with positions,
 * nulls and empty lists left out (empty strings and false stay). And back: an AST object a policy passes
 * in is printed as GraphQL text, which graphql-js then parses as it parses any other document.
 */
import type {
  ArgumentNode,
  ConstDirectiveNode,
  DirectiveNode,
  DocumentNode,
  FieldDefinitionNode,
  InputValueDefinitionNode,
  SelectionNode,
  TypeNode,
  ValueNode,
  VariableDefinitionNode,
} from 'graphql';
import { Kind } from 'graphql';

type Json = Record<string, unknown>;

/** Drops nulls, empty lists and empty objects, as OPA's pruning does. */
function prune(o: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}

const valueKind: Record<string, number> = {
  [Kind.VARIABLE]: 0,
  [Kind.INT]: 1,
  [Kind.FLOAT]: 2,
  [Kind.STRING]: 3,
  [Kind.BOOLEAN]: 5,
  [Kind.NULL]: 6,
  [Kind.ENUM]: 7,
  [Kind.LIST]: 8,
  [Kind.OBJECT]: 9,
};

function value(v: ValueNode): Json {
  const base = { ExpectedTypeHasDefault: false };
  switch (v.kind) {
    case Kind.VARIABLE:
      return { ...base, Kind: 0, Raw: v.name.value };
    case Kind.STRING:
      return { ...base, Kind: v.block ? 4 : 3, Raw: v.value };
    case Kind.INT:
    case Kind.FLOAT:
    case Kind.ENUM:
      return { ...base, Kind: valueKind[v.kind], Raw: v.value };
    case Kind.BOOLEAN:
      return { ...base, Kind: 5, Raw: String(v.value) };
    case Kind.NULL:
      return { ...base, Kind: 6, Raw: 'null' };
    case Kind.LIST:
      return prune({
        ...base,
        Kind: 8,
        Raw: '',
        Children: v.values.map((c) => ({ Name: '', Value: value(c) })),
      });
    case Kind.OBJECT:
      return prune({
        ...base,
        Kind: 9,
        Raw: '',
        Children: v.fields.map((f) => ({ Name: f.name.value, Value: value(f.value) })),
      });
  }
}

function type(t: TypeNode, nonNull = false): Json {
  if (t.kind === Kind.NON_NULL_TYPE) return type(t.type, true);
  if (t.kind === Kind.LIST_TYPE) return { Elem: type(t.type), NamedType: '', NonNull: nonNull };
  return { NamedType: t.name.value, NonNull: nonNull };
}

const args = (list: readonly ArgumentNode[] | undefined) =>
  (list ?? []).map((a) => ({ Name: a.name.value, Value: value(a.value) }));

const directives = (list: readonly (DirectiveNode | ConstDirectiveNode)[] | undefined) =>
  (list ?? []).map((d) => prune({ Location: '', Name: d.name.value, Arguments: args(d.arguments) }));

const variables = (list: readonly VariableDefinitionNode[] | undefined) =>
  (list ?? []).map((v) =>
    prune({
      Variable: v.variable.name.value,
      Type: type(v.type),
      DefaultValue: v.defaultValue && value(v.defaultValue),
      Directives: directives(v.directives),
      Used: false,
    }),
  );

function selections(list: readonly SelectionNode[] | undefined): Json[] {
  return (list ?? []).map((s) => {
    if (s.kind === Kind.FIELD)
      return prune({
        Alias: s.alias?.value ?? s.name.value,
        Name: s.name.value,
        Arguments: args(s.arguments),
        Directives: directives(s.directives),
        SelectionSet: selections(s.selectionSet?.selections),
      });
    if (s.kind === Kind.FRAGMENT_SPREAD)
      return prune({ Name: s.name.value, Directives: directives(s.directives) });
    return prune({
      TypeCondition: s.typeCondition?.name.value ?? '',
      Directives: directives(s.directives),
      SelectionSet: selections(s.selectionSet.selections),
    });
  });
}

export function queryAst(doc: DocumentNode): Json {
  const Operations: Json[] = [];
  const Fragments: Json[] = [];
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION)
      Operations.push(
        prune({
          Operation: d.operation,
          Name: d.name?.value ?? '',
          VariableDefinitions: variables(d.variableDefinitions),
          Directives: directives(d.directives),
          SelectionSet: selections(d.selectionSet.selections),
        }),
      );
    else if (d.kind === Kind.FRAGMENT_DEFINITION)
      Fragments.push(
        prune({
          Name: d.name.value,
          VariableDefinition: variables(d.variableDefinitions),
          TypeCondition: d.typeCondition.name.value,
          Directives: directives(d.directives),
          SelectionSet: selections(d.selectionSet.selections),
        }),
      );
  }
  return prune({ Operations, Fragments });
}

const inputValue = (a: InputValueDefinitionNode) =>
  prune({
    Description: a.description?.value ?? '',
    Name: a.name.value,
    DefaultValue: a.defaultValue && value(a.defaultValue),
    Type: type(a.type),
    Directives: directives(a.directives),
  });

const fieldDef = (f: FieldDefinitionNode | InputValueDefinitionNode) =>
  f.kind === Kind.INPUT_VALUE_DEFINITION
    ? inputValue(f)
    : prune({
        Description: f.description?.value ?? '',
        Name: f.name.value,
        Arguments: (f.arguments ?? []).map(inputValue),
        Type: type(f.type),
        Directives: directives(f.directives),
      });

const typeKinds: Record<string, string> = {
  [Kind.SCALAR_TYPE_DEFINITION]: 'SCALAR',
  [Kind.SCALAR_TYPE_EXTENSION]: 'SCALAR',
  [Kind.OBJECT_TYPE_DEFINITION]: 'OBJECT',
  [Kind.OBJECT_TYPE_EXTENSION]: 'OBJECT',
  [Kind.INTERFACE_TYPE_DEFINITION]: 'INTERFACE',
  [Kind.INTERFACE_TYPE_EXTENSION]: 'INTERFACE',
  [Kind.UNION_TYPE_DEFINITION]: 'UNION',
  [Kind.UNION_TYPE_EXTENSION]: 'UNION',
  [Kind.ENUM_TYPE_DEFINITION]: 'ENUM',
  [Kind.ENUM_TYPE_EXTENSION]: 'ENUM',
  [Kind.INPUT_OBJECT_TYPE_DEFINITION]: 'INPUT_OBJECT',
  [Kind.INPUT_OBJECT_TYPE_EXTENSION]: 'INPUT_OBJECT',
};

export function schemaAst(doc: DocumentNode): Json {
  const out: Record<string, Json[]> = {
    Schema: [],
    SchemaExtension: [],
    Directives: [],
    Definitions: [],
    Extensions: [],
  };
  for (const d of doc.definitions) {
    switch (d.kind) {
      case Kind.SCHEMA_DEFINITION:
      case Kind.SCHEMA_EXTENSION:
        out[d.kind === Kind.SCHEMA_DEFINITION ? 'Schema' : 'SchemaExtension']!.push(
          prune({
            Description: (d.kind === Kind.SCHEMA_DEFINITION && d.description?.value) || '',
            Directives: directives(d.directives),
            OperationTypes: (d.operationTypes ?? []).map((o) => ({
              Operation: o.operation,
              Type: o.type.name.value,
            })),
          }),
        );
        break;
      case Kind.DIRECTIVE_DEFINITION:
        out.Directives!.push(
          prune({
            Description: d.description?.value ?? '',
            Name: d.name.value,
            Arguments: (d.arguments ?? []).map(inputValue),
            Locations: d.locations.map((l) => l.value),
            IsRepeatable: d.repeatable,
          }),
        );
        break;
      default: {
        const kind = typeKinds[d.kind];
        if (!kind || !('name' in d) || !d.name) break;
        const t = d as Extract<typeof d, { name: unknown }> & Record<string, unknown>;
        const isExtension = d.kind.endsWith('Extension');
        out[isExtension ? 'Extensions' : 'Definitions']!.push(
          prune({
            Kind: kind,
            Description:
              ('description' in t && (t.description as { value: string } | undefined)?.value) || '',
            Name: t.name.value,
            Directives: directives(t.directives as readonly DirectiveNode[] | undefined),
            Interfaces: ((t.interfaces as readonly { name: { value: string } }[] | undefined) ?? []).map(
              (i) => i.name.value,
            ),
            Fields: (
              (t.fields as readonly (FieldDefinitionNode | InputValueDefinitionNode)[] | undefined) ?? []
            ).map(fieldDef),
            Types: ((t.types as readonly { name: { value: string } }[] | undefined) ?? []).map(
              (i) => i.name.value,
            ),
            EnumValues: ((t.values as readonly Json[] | undefined) ?? []).map((v) =>
              prune({
                Description: (v.description as { value: string } | undefined)?.value ?? '',
                Name: (v.name as { value: string }).value,
                Directives: directives(v.directives as readonly DirectiveNode[] | undefined),
              }),
            ),
            BuiltIn: false,
          }),
        );
      }
    }
  }
  return prune(out);
}

// ---- printing an AST object back as GraphQL text ----

const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
/** A name as it may appear in GraphQL text: anything else is refused rather than spliced in. */
function name(v: unknown): string {
  const s = text(v);
  if (!/^[_A-Za-z][_0-9A-Za-z]*$/.test(s)) throw new Error(`${JSON.stringify(s)} is not a GraphQL name`);
  return s;
}

function printValue(v: Json): string {
  const raw = text(v.Raw);
  switch (v.Kind) {
    case 0:
      return `$${name(raw)}`;
    case 1:
    case 2:
      if (!/^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(raw))
        throw new Error(`${raw} is not a GraphQL number`);
      return raw;
    case 3:
    case 4:
      return JSON.stringify(raw);
    case 5:
      if (raw !== 'true' && raw !== 'false') throw new Error(`${raw} is not a GraphQL boolean`);
      return raw;
    case 6:
      return 'null';
    case 7:
      return name(raw);
    case 8:
      return `[${list(v.Children)
        .map((c) => printValue(c.Value as Json))
        .join(', ')}]`;
    case 9:
      return `{${list(v.Children)
        .map((c) => `${name(c.Name)}: ${printValue(c.Value as Json)}`)
        .join(', ')}}`;
    default:
      throw new Error(`a GraphQL value of kind ${JSON.stringify(v.Kind)} is not known`);
  }
}

function printType(t: Json): string {
  const inner = t.Elem ? `[${printType(t.Elem as Json)}]` : name(t.NamedType);
  return t.NonNull === true ? `${inner}!` : inner;
}

const printArgs = (a: unknown) => {
  const items = list(a);
  return items.length
    ? `(${items.map((x) => `${name(x.Name)}: ${printValue(x.Value as Json)}`).join(', ')})`
    : '';
};
const printDirectives = (d: unknown) =>
  list(d)
    .map((x) => ` @${name(x.Name)}${printArgs(x.Arguments)}`)
    .join('');
const printDefault = (v: unknown) => (v ? ` = ${printValue(v as Json)}` : '');
const printVariables = (v: unknown) => {
  const items = list(v);
  return items.length
    ? `(${items
        .map(
          (x) =>
            `$${name(x.Variable)}: ${printType(x.Type as Json)}${printDefault(x.DefaultValue)}${printDirectives(x.Directives)}`,
        )
        .join(', ')})`
    : '';
};

function printSelections(s: unknown): string {
  const items = list(s);
  if (items.length === 0) return '';
  const body = items.map((x) => {
    if ('TypeCondition' in x) {
      const on = text(x.TypeCondition) ? ` on ${name(x.TypeCondition)}` : '';
      return `...${on}${printDirectives(x.Directives)}${printSelections(x.SelectionSet) || ' {}'}`;
    }
    if (!('Alias' in x) && !('Arguments' in x) && !('SelectionSet' in x) && x.Name !== undefined)
      return `...${name(x.Name)}${printDirectives(x.Directives)}`;
    const alias = x.Alias && x.Alias !== x.Name ? `${name(x.Alias)}: ` : '';
    return `${alias}${name(x.Name)}${printArgs(x.Arguments)}${printDirectives(x.Directives)}${printSelections(x.SelectionSet)}`;
  });
  return ` { ${body.join(' ')} }`;
}

const description = (d: unknown) => (text(d) ? `${JSON.stringify(text(d))} ` : '');

function printInputValue(a: Json): string {
  return `${description(a.Description)}${name(a.Name)}: ${printType(a.Type as Json)}${printDefault(a.DefaultValue)}${printDirectives(a.Directives)}`;
}

function printField(f: Json, input: boolean): string {
  if (input) return printInputValue(f);
  const a = list(f.Arguments);
  const argText = a.length ? `(${a.map(printInputValue).join(', ')})` : '';
  return `${description(f.Description)}${name(f.Name)}${argText}: ${printType(f.Type as Json)}${printDirectives(f.Directives)}`;
}

const keywords: Record<string, string> = {
  SCALAR: 'scalar',
  OBJECT: 'type',
  INTERFACE: 'interface',
  UNION: 'union',
  ENUM: 'enum',
  INPUT_OBJECT: 'input',
};

function printDefinition(d: Json, extend: boolean): string {
  const keyword = keywords[text(d.Kind)];
  if (!keyword) throw new Error(`a GraphQL definition of kind ${JSON.stringify(d.Kind)} is not known`);
  const head = `${extend ? 'extend ' : description(d.Description)}${keyword} ${name(d.Name)}`;
  const interfaces = list(d.Interfaces).length
    ? ` implements ${list(d.Interfaces).map(name).join(' & ')}`
    : '';
  const types = list(d.Types).length ? ` = ${list(d.Types).map(name).join(' | ')}` : '';
  const fields = list(d.Fields).length
    ? ` { ${list(d.Fields)
        .map((f) => printField(f, d.Kind === 'INPUT_OBJECT'))
        .join(' ')} }`
    : '';
  const values = list(d.EnumValues).length
    ? ` { ${list(d.EnumValues)
        .map((v) => `${description(v.Description)}${name(v.Name)}${printDirectives(v.Directives)}`)
        .join(' ')} }`
    : '';
  return `${head}${interfaces}${printDirectives(d.Directives)}${types}${fields}${values}`;
}

function printSchema(s: Json, extend: boolean): string {
  const ops = list(s.OperationTypes);
  const body = ops.length ? ` { ${ops.map((o) => `${name(o.Operation)}: ${name(o.Type)}`).join(' ')} }` : '';
  return `${extend ? 'extend ' : description(s.Description)}schema${printDirectives(s.Directives)}${body}`;
}

/** GraphQL text for a query or schema AST object, in the shape the parse builtins return. */
export function printDocument(ast: unknown, kind: 'query' | 'schema'): string {
  if (!ast || typeof ast !== 'object' || Array.isArray(ast))
    throw new Error(`a GraphQL ${kind} AST must be an object`);
  const doc = ast as Json;
  const parts: string[] = [];
  if (kind === 'query') {
    for (const o of list(doc.Operations))
      parts.push(
        `${name(o.Operation)}${o.Name ? ` ${name(o.Name)}` : ''}${printVariables(o.VariableDefinitions)}${printDirectives(o.Directives)}${printSelections(o.SelectionSet) || ' {}'}`,
      );
    for (const f of list(doc.Fragments))
      parts.push(
        `fragment ${name(f.Name)}${printVariables(f.VariableDefinition)} on ${name(f.TypeCondition)}${printDirectives(f.Directives)}${printSelections(f.SelectionSet) || ' {}'}`,
      );
  } else {
    for (const s of list(doc.Schema)) parts.push(printSchema(s, false));
    for (const s of list(doc.SchemaExtension)) parts.push(printSchema(s, true));
    for (const d of list(doc.Directives)) {
      const a = list(d.Arguments);
      parts.push(
        `${description(d.Description)}directive @${name(d.Name)}${a.length ? `(${a.map(printInputValue).join(', ')})` : ''}${d.IsRepeatable === true ? ' repeatable' : ''} on ${list(d.Locations).map(name).join(' | ')}`,
      );
    }
    for (const d of list(doc.Definitions)) parts.push(printDefinition(d, false));
    for (const d of list(doc.Extensions)) parts.push(printDefinition(d, true));
  }
  return parts.join('\n');
}
