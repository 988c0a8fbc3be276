import SqliteDatabase from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { OwnSchemaPostgresDialect } from './postgres-dialect.ts';
import type { Database } from './schema.ts';
import { GroupCommitSqliteDialect } from './sqlite-group-commit.ts';

export type Dialect = 'sqlite' | 'postgres';

/** An open database: the query builder, which engine it is, and how to close it. */
export type Db = {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** How it was opened: a worker thread opens its own connection with these (the audit verifier). */
  options: DatabaseOptions;
  destroy(): Promise<void>;
};

export type DatabaseOptions =
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

// pg returns int8 as string; our counters (audit seq) fit in a JS number for 2^53 events.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * The SQLite connection as Kysely sees it, with each statement prepared once and kept (the last 1,000 SQL
 * texts): the same queries run on every request, and preparing them again cost more than running them.
 * No query streams here (`stream()` would iterate a kept statement while another query used it).
 */
function keepingStatements(raw: SqliteDatabase.Database) {
  const kept = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => raw.close(),
    prepare(text: string) {
      let statement = kept.get(text);
      if (statement) {
        // Most recently used last: the oldest is the first to go.
        kept.delete(text);
      } else {
        statement = raw.prepare(text);
        if (kept.size >= 1000) kept.delete(kept.keys().next().value!);
      }
      kept.set(text, statement);
      return statement;
    },
  };
}

/** Opens SQLite (WAL, foreign keys on) or a PostgreSQL pool. Nothing is migrated here. */
export function openDatabase(options: DatabaseOptions): Db {
  if (options.kind === 'sqlite') {
    const raw = new SqliteDatabase(options.file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('foreign_keys = ON');
    raw.pragma('busy_timeout = 5000');
    const kysely = new Kysely<Database>({ dialect: new GroupCommitSqliteDialect(keepingStatements(raw)) });
    return { kysely, dialect: 'sqlite', options, destroy: () => kysely.destroy() };
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    ...(options.schema ? { options: `-c search_path=${quoteIdent(options.schema)}` } : {}),
  });
  const kysely = new Kysely<Database>({ dialect: new OwnSchemaPostgresDialect({ pool }) });
  return { kysely, dialect: 'postgres', options, destroy: () => kysely.destroy() };
}

/** Parses `DATABASE_URL`-style settings: postgres:// URLs go to PostgreSQL, anything else is a SQLite path. */
export function databaseOptionsFrom(url: string | undefined, sqliteFile: string): DatabaseOptions {
  if (url && /^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (url?.startsWith('sqlite:')) return { kind: 'sqlite', file: url.slice('sqlite:'.length) };
  return { kind: 'sqlite', file: sqliteFile };
}

/** True when the database answers a trivial query; used by /readyz. */
export async function isReachable(db: Db): Promise<boolean> {
  try {
    await sql`select 1`.execute(db.kysely);
    return true;
  } catch {
    return false;
  }
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return name;
}
