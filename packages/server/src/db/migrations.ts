import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import type { Db, Dialect } from './database.ts';
import { foundation } from './migrations/0001-0009.ts';
import { governance } from './migrations/0010-0023.ts';
import { scale } from './migrations/0024-scale.ts';
import { agents } from './migrations/0027-agents.ts';
import { repos } from './migrations/0029-repos.ts';
import { replicas } from './migrations/0030-replicas.ts';

type AnyDb = Kysely<unknown>;

/**
 * Forward-only migrations, in order. Never edit one that has shipped: add the next.
 * Each is a function of the dialect so the rare engine-specific statement (triggers) sits beside the rest.
 */
const migrations: Record<string, (dialect: Dialect) => Migration> = {
  ...foundation,
  ...governance,
  ...scale,
  ...agents,
  ...repos,
  ...replicas,
};

/** Applies every pending migration; returns the names applied. Throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const provider = {
    async getMigrations() {
      return Object.fromEntries(Object.entries(migrations).map(([name, make]) => [name, make(db.dialect)]));
    },
  };
  // On PostgreSQL, name the schema: Kysely otherwise finds its bookkeeping tables in any schema of
  // the database (another tenant's, or another test run's) and skips creating its own.
  const schema =
    db.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db.kysely)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({
    db: db.kysely as unknown as AnyDb,
    provider,
    allowUnorderedMigrations: false,
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  let { error, results } = await migrator.migrateToLatest();
  // Kysely looks for its bookkeeping table by listing every table of the database; on PostgreSQL a schema
  // dropped at that moment by someone else (another tenant, another test run) fails the listing with
  // 42P01. No migration ran then, so looking again is safe.
  for (
    let retry = 0;
    retry < 3 && error && !results?.length && (error as { code?: string }).code === '42P01';
    retry++
  )
    ({ error, results } = await migrator.migrateToLatest());
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const where = failed ? ` in migration ${failed.migrationName}` : '';
    throw new Error(`database migration failed${where}: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
