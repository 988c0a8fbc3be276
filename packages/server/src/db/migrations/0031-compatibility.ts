import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const compatibility: Record<string, (dialect: Dialect) => Migration> = {
  '0031_schema_compatibility': () => ({
    async up(db: AnyDb) {
      // The oldest server release (by schema compatibility number, see schemaCompatibility in
      // ../migrations.ts) that can still run on this database. A migration that breaks older servers
      // raises it; one that only adds leaves it.
      await db.schema
        .createTable('schema_compatibility')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('min_server', 'integer', (c) => c.notNull())
        .execute();
      await sql`insert into schema_compatibility (id, min_server) values (1, 1)`.execute(db);
    },
  }),
};
