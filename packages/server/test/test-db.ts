import { join } from 'node:path';
import pg from 'pg';
import { type Db, openDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrations.ts';

/**
 * A migrated database of its own for a test: a SQLite file in `dir`, or a new schema of the PostgreSQL at
 * MICROAPP_TEST_POSTGRES_URL. `drop` closes it and removes the schema.
 */
export async function testDatabase(
  engine: 'sqlite' | 'postgres',
  dir: string,
): Promise<{ db: Db; drop: () => Promise<void> }> {
  const url = process.env.MICROAPP_TEST_POSTGRES_URL;
  if (engine === 'sqlite') {
    const db = openDatabase({ kind: 'sqlite', file: join(dir, 'test.sqlite') });
    await migrateToLatest(db);
    return { db, drop: () => db.destroy() };
  }
  if (!url) throw new Error('MICROAPP_TEST_POSTGRES_URL is not set');
  const schema = `t_${Math.random().toString(36).slice(2, 12)}`;
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  await admin(`create schema ${schema}`);
  const db = openDatabase({ kind: 'postgres', url, schema, poolSize: 4 });
  await migrateToLatest(db);
  return {
    db,
    async drop() {
      await db.destroy();
      await admin(`drop schema ${schema} cascade`);
    },
  };
}
