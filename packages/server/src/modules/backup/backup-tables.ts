import { type Kysely, sql } from 'kysely';
import type { Db } from '../../db/database.ts';

/**
 * Tables a backup leaves out: the migrator's bookkeeping, rows a migration writes itself, and indexes kept by
 * triggers (SQLite's search text and its FTS5 tables, rebuilt as the apps are restored).
 */
const derived =
  /^(kysely_migration|kysely_migration_lock|schema_compatibility|change_generation|app_search.*|sqlite_.*)$/;

export type TableShape = {
  name: string;
  /** The columns a backup writes and a restore inserts (a generated column is computed again). */
  columns: string[];
  /** The primary key's columns, which order the rows; every column when there is none. */
  key: string[];
  /** Columns filled from a sequence (PostgreSQL `bigserial`): set past the restored rows. */
  serial: string[];
  /** Tables this one references: restored first. */
  references: string[];
};

const any = (db: Db) => db.kysely as unknown as Kysely<Record<string, Record<string, unknown>>>;

/** Every table of the platform's schema with what a backup and a restore need to know of it. */
export async function tableShapes(db: Db): Promise<TableShape[]> {
  const k = any(db);
  if (db.dialect === 'sqlite') {
    const names = (
      await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(
        k,
      )
    ).rows
      .map((r) => r.name)
      .filter((n) => !derived.test(n));
    const shapes: TableShape[] = [];
    for (const name of names) {
      const cols = (
        await sql<{
          name: string;
          pk: number;
          hidden: number;
        }>`select name, pk, hidden from pragma_table_xinfo(${name})`.execute(k)
      ).rows;
      const fks = (
        await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${name})`.execute(k)
      ).rows;
      const columns = cols.filter((c) => c.hidden === 0).map((c) => c.name);
      const key = cols
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
      shapes.push({
        name,
        columns,
        key: key.length ? key : columns,
        serial: [],
        references: fks.map((f) => f.table),
      });
    }
    return shapes;
  }
  const cols = (
    await sql<{
      table_name: string;
      column_name: string;
      is_generated: string;
      column_default: string | null;
    }>`
      select table_name, column_name, is_generated, column_default from information_schema.columns
      where table_schema = current_schema() order by table_name, ordinal_position`.execute(k)
  ).rows;
  const keys = (
    await sql<{ table_name: string; column_name: string }>`
      select kcu.table_name, kcu.column_name from information_schema.table_constraints tc
      join information_schema.key_column_usage kcu
        on kcu.constraint_name = tc.constraint_name and kcu.constraint_schema = tc.constraint_schema
      where tc.constraint_type = 'PRIMARY KEY' and tc.table_schema = current_schema()
      order by kcu.table_name, kcu.ordinal_position`.execute(k)
  ).rows;
  const refs = (
    await sql<{ table_name: string; referenced: string }>`
      select tc.table_name, ccu.table_name as referenced from information_schema.table_constraints tc
      join information_schema.constraint_column_usage ccu
        on ccu.constraint_name = tc.constraint_name and ccu.constraint_schema = tc.constraint_schema
      where tc.constraint_type = 'FOREIGN KEY' and tc.table_schema = current_schema()`.execute(k)
  ).rows;
  const names = [...new Set(cols.map((c) => c.table_name))].filter((n) => !derived.test(n)).sort();
  return names.map((name) => {
    const own = cols.filter((c) => c.table_name === name);
    const columns = own.filter((c) => c.is_generated !== 'ALWAYS').map((c) => c.column_name);
    const key = keys.filter((c) => c.table_name === name).map((c) => c.column_name);
    return {
      name,
      columns,
      key: key.length ? key : columns,
      serial: own.filter((c) => c.column_default?.startsWith('nextval(')).map((c) => c.column_name),
      references: refs.filter((r) => r.table_name === name).map((r) => r.referenced),
    };
  });
}

/** The tables in an order where each comes after the tables it references (a self-reference is fine). */
export function restoreOrder(shapes: TableShape[]): TableShape[] {
  const byName = new Map(shapes.map((s) => [s.name, s]));
  const done = new Set<string>();
  const ordered: TableShape[] = [];
  const visit = (s: TableShape, path: Set<string>) => {
    if (done.has(s.name) || path.has(s.name)) return;
    path.add(s.name);
    for (const r of s.references) {
      const dep = byName.get(r);
      if (dep && r !== s.name) visit(dep, path);
    }
    done.add(s.name);
    ordered.push(s);
  };
  for (const s of shapes) visit(s, new Set());
  return ordered;
}
