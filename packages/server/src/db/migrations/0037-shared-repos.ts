import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const sharedRepos: Record<string, (_dialect: Dialect) => Migration> = {
  '0037_shared_repositories': () => ({
    async up(db: AnyDb) {
      // Repositories that replicas share through the database and the blob store (MICROAPP_GIT_STORE=shared):
      // every branch's commit, moved by compare-and-swap, and the packs that hold the objects, in the order
      // they were written (a replica applies the ones its copy lacks). New tables only: older servers run on.
      await db.schema
        .createTable('repo_refs')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('commit_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repo_refs_pk', ['repo_id', 'ref'])
        .execute();
      await db.schema
        .createTable('repo_packs')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('objects', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repo_packs_pk', ['repo_id', 'seq'])
        .execute();
    },
  }),
  '0038_repo_pack_uploads': () => ({
    async up(db: AnyDb) {
      // Packs put in the blob store and named by no repository yet (a write another replica refused) or any
      // more (packs a compaction merged): removed once nothing has named them for an hour (repo-packs.ts).
      // A new table and an index only: older servers run on.
      await db.schema
        .createTable('repo_pack_uploads')
        .addColumn('digest', 'text', (c) => c.primaryKey())
        .addColumn('uploaded_at', 'text', (c) => c.notNull())
        .execute();
      // The sweep asks, for each upload, whether any repository names it.
      await db.schema.createIndex('repo_packs_digest').on('repo_packs').column('digest').execute();
    },
  }),
};
