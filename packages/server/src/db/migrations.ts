import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import type { Db, Dialect } from './database.ts';
import { foundation } from './migrations/0001-0009.ts';
import { governance } from './migrations/0010-0023.ts';
import { scale } from './migrations/0024-scale.ts';
import { agents } from './migrations/0027-agents.ts';
import { repos } from './migrations/0029-repos.ts';
import { replicas } from './migrations/0030-replicas.ts';
import { compatibility } from './migrations/0031-compatibility.ts';
import { clusterRoutes } from './migrations/0032-cluster-routes.ts';
import { revisionAnswers } from './migrations/0033-revision-answers.ts';
import { agentChanges } from './migrations/0034-agent-changes.ts';
import { scorecardChanges } from './migrations/0036-scorecard-changes.ts';
import { sharedRepos } from './migrations/0037-shared-repos.ts';

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
  ...compatibility,
  ...clusterRoutes,
  ...revisionAnswers,
  ...agentChanges,
  ...scorecardChanges,
  ...sharedRepos,
};

/**
 * The schema compatibility this server implements. A migration that only adds (a table, a nullable column,
 * an index) leaves older servers working: it changes nothing here. One that removes or changes what an older
 * server reads raises `schema_compatibility.min_server` to this release's number, so servers before it refuse
 * the database instead of misreading it. Two releases can then run side by side during a rolling upgrade
 * whenever the newer one's migrations only added. See docs/operations.md, "Upgrades".
 */
export const schemaCompatibility = 1;

/** The names of the migrations this release knows, in order. */
export const knownMigrations = () => Object.keys(migrations);

/** Refuses a database that a newer server migrated in a way this one cannot read; null when it may run. */
async function newerSchema(db: Db, known: string[]): Promise<{ unknown: string[] } | null> {
  let applied: string[];
  try {
    applied = (await sql<{ name: string }>`select name from kysely_migration`.execute(db.kysely)).rows.map(
      (r) => r.name,
    );
  } catch {
    return null;
  }
  const unknown = applied.filter((n) => !known.includes(n)).sort();
  if (!unknown.length) return null;
  const row = await sql<{ min_server: number }>`select min_server from schema_compatibility where id = 1`
    .execute(db.kysely)
    .then((r) => r.rows[0])
    .catch(() => undefined);
  const needed = Number(row?.min_server ?? Number.POSITIVE_INFINITY);
  if (needed > schemaCompatibility)
    throw new Error(
      `the database was migrated by a newer microapp (${unknown.join(', ')}) that older servers cannot run on: it needs schema compatibility ${needed}, this server has ${schemaCompatibility}. Upgrade this server, or restore the database from a backup taken before the upgrade`,
    );
  return { unknown };
}

/**
 * Applies every pending migration; returns the names applied. Throws with the failing migration's name. On a
 * database a newer server already migrated, runs nothing when this server can still read it (a rolling
 * upgrade) and throws, saying what to do, when it cannot.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  if (await newerSchema(db, Object.keys(migrations))) return [];
  const provider = {
    async getMigrations() {
      return Object.fromEntries(Object.entries(migrations).map(([name, make]) => [name, make(db.dialect)]));
    },
  };
  // Kysely finds its bookkeeping tables by listing tables: on PostgreSQL the dialect lists only this
  // server's own schema (db/postgres-dialect.ts), never another tenant's or another test run's.
  const migrator = new Migrator({
    db: db.kysely as unknown as AnyDb,
    provider,
    allowUnorderedMigrations: false,
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const where = failed ? ` in migration ${failed.migrationName}` : '';
    throw new Error(`database migration failed${where}: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
