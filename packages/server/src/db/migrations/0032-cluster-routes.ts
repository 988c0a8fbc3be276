import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const clusterRoutes: Record<string, (dialect: Dialect) => Migration> = {
  '0032_cluster_routes': (dialect) => ({
    async up(db: AnyDb) {
      // What the Kubernetes driver last rendered for an app's environment: the version its GitOps repository
      // holds, which the gateway forwards requests to (the app's Service) when no local instance runs it.
      // Only adds: older servers run on beside it (schema compatibility unchanged).
      await db.schema
        .createTable('cluster_routes')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('rendered_by', 'text', (c) => c.notNull())
        .addColumn('rendered_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('cluster_routes_pk', ['app_id', 'env'])
        .execute();
      // The gateway keeps what it found here until it changes, as for apps (0026_change_generation).
      if (dialect === 'sqlite')
        for (const [i, event] of ['insert', 'update', 'delete'].entries())
          await sql
            .raw(`create trigger cluster_routes_changed_${i} after ${event} on cluster_routes begin
              update change_generation set value = value + 1 where id = 1;
            end`)
            .execute(db);
      else
        await sql`create trigger cluster_routes_changed after insert or update or delete on cluster_routes
          for each statement execute function microapp_changed()`.execute(db);
    },
  }),
};
