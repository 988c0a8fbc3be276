import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Migrations for app repositories and their change requests. Shipped: never edit one, add the next
// (../migrations.ts lists every file).

export const repos: Record<string, (dialect: Dialect) => Migration> = {
  '0029_repos': () => ({
    async up(db: AnyDb) {
      // An app's repository on the platform's git server. Its content is on disk (`repos/ID.git`); this row
      // says it exists, where it came from, and whether it still takes pushes.
      await db.schema
        .createTable('app_repos')
        .addColumn('app_id', 'text', (c) => c.primaryKey())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('initial_commit', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('archived_at', 'text')
        .execute();
      // A branch pushed to an app's repository, on its way to main: its checks (a pipeline build of the
      // head commit), the reviews the app's tier asks for, and, once merged, the build that ships it.
      await db.schema
        .createTable('change_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('number', 'integer', (c) => c.notNull())
        .addColumn('branch', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('base_commit', 'text', (c) => c.notNull())
        .addColumn('head_commit', 'text', (c) => c.notNull())
        .addColumn('opened_by', 'text', (c) => c.notNull())
        .addColumn('opened_by_id', 'text', (c) => c.notNull())
        .addColumn('check_build_id', 'text')
        .addColumn('check_error', 'text')
        .addColumn('merged_commit', 'text')
        .addColumn('merged_by', 'text')
        .addColumn('release_build_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('closed_at', 'text')
        .addUniqueConstraint('change_requests_number', ['app_id', 'number'])
        .execute();
      await db.schema
        .createIndex('change_requests_branch')
        .on('change_requests')
        .columns(['app_id', 'branch', 'state'])
        .execute();
      // A reviewer's decision on a change request, for the head commit it was given on: a new push asks again.
      await db.schema
        .createTable('change_reviews')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('change_id', 'text', (c) => c.notNull().references('change_requests.id'))
        .addColumn('head_commit', 'text', (c) => c.notNull())
        .addColumn('reviewer', 'text', (c) => c.notNull())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('specialty', 'text')
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('comment', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('change_reviews_change')
        .on('change_reviews')
        .columns(['change_id'])
        .execute();
    },
  }),
};
