import {
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  type Kysely,
  PostgresDialect,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from 'kysely';

const kyselyTables = new Set(['kysely_migration', 'kysely_migration_lock']);

type ColumnRow = {
  table: string;
  schema: string;
  kind: string;
  column: string;
  data_type: string;
  nullable: string;
  column_default: string | null;
  identity: string;
};

/**
 * Lists the tables of the connection's own schema only. Kysely's own PostgreSQL introspector lists every
 * table of every schema, calling `pg_get_serial_sequence` on each column. Its migrator does that before each
 * run to find its bookkeeping tables. When another schema of the same database (another tenant, another
 * test run) was dropped or altered during the listing, the listing failed (42P01, 42703), and so did the
 * start of a server that had nothing to do with that schema.
 */
class OwnSchemaIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select current_schema() as name`.execute(this.#db);
    return rows;
  }

  async getTables(
    options: DatabaseMetadataOptions = { withInternalKyselyTables: false },
  ): Promise<TableMetadata[]> {
    const { rows } = await sql<ColumnRow>`
      select c.table_name as "table", c.table_schema as "schema", t.table_type as kind, c.column_name as "column",
             c.data_type, c.is_nullable as nullable, c.column_default, c.is_identity as identity
      from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = current_schema()
      order by c.table_name, c.ordinal_position`.execute(this.#db);
    const tables = new Map<string, TableMetadata & { columns: TableMetadata['columns'][number][] }>();
    for (const row of rows) {
      if (!options.withInternalKyselyTables && kyselyTables.has(row.table)) continue;
      let table = tables.get(row.table);
      if (!table) {
        table = { name: row.table, schema: row.schema, isView: row.kind === 'VIEW', columns: [] };
        tables.set(row.table, table);
      }
      table.columns.push({
        name: row.column,
        dataType: row.data_type,
        isNullable: row.nullable === 'YES',
        hasDefaultValue: row.column_default !== null || row.identity === 'YES',
        isAutoIncrementing: row.identity === 'YES' || /^nextval\(/.test(row.column_default ?? ''),
      });
    }
    return [...tables.values()];
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}

/** Kysely's PostgreSQL dialect, introspecting only the connection's own schema (see OwnSchemaIntrospector). */
export class OwnSchemaPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new OwnSchemaIntrospector(db);
  }
}
