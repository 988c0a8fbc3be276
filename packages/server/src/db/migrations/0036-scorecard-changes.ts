import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const scorecardChanges: Record<string, (dialect: Dialect) => Migration> = {
  '0036_scorecard_changes': (dialect) => ({
    async up(db: AnyDb) {
      // The catalog keeps what an app's scorecard is computed from (its newest version and scan, its open
      // advisories, its owner, its renewal) until it changes, as for apps (0026_change_generation): versions
      // and advisory alerts now say when they change too. Triggers only: older servers run on beside it.
      const tables = ['app_versions', 'advisory_alerts'];
      if (dialect === 'sqlite') {
        for (const table of tables)
          for (const [i, event] of ['insert', 'update', 'delete'].entries())
            await sql
              .raw(`create trigger ${table}_changed_${i} after ${event} on ${table} begin
                update change_generation set value = value + 1 where id = 1;
              end`)
              .execute(db);
        return;
      }
      for (const table of tables)
        await sql
          .raw(`create trigger ${table}_changed after insert or update or delete on ${table}
            for each statement execute function microapp_changed()`)
          .execute(db);
    },
  }),
};
