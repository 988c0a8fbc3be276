import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Migrations for several replicas on one database. Shipped: never edit one, add the next
// (../migrations.ts lists every file).

export const replicas: Record<string, (dialect: Dialect) => Migration> = {
  '0030_replicas': () => ({
    async up(db: AnyDb) {
      // Each running server, by name (MICROAPP_REPLICA_ID): its lease is live while `lease_until` is ahead.
      // A replica owns the builds and app instances it runs; another takes them over only once the lease ran out.
      await db.schema
        .createTable('replicas')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('lease_until', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        // Where the other replicas reach this one's gateway, to forward requests for the apps it runs.
        .addColumn('url', 'text')
        .execute();
      // Null on rows written before replicas had names: the first replica to start owns them.
      await db.schema.alterTable('builds').addColumn('replica_id', 'text').execute();
      await db.schema.alterTable('deployments').addColumn('replica_id', 'text').execute();
    },
  }),
};
