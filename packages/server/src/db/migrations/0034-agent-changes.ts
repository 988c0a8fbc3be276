import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const agentChanges: Record<string, (_dialect: Dialect) => Migration> = {
  '0034_agent_changes': () => ({
    async up(db: AnyDb) {
      // The delegation whose agent pushed a change's head commit (null: a person pushed it). Such a change
      // merges only once that person confirms it. A nullable column: older servers run on beside it.
      await db.schema.alterTable('change_requests').addColumn('agent_delegation_id', 'text').execute();
    },
  }),
  '0035_hosted_repos': () => ({
    async up(db: AnyDb) {
      // An app whose repository lives at the company's GitHub or GitLab: the host and its repository (JSON,
      // with the host's id for it), and for a change request the pull (merge) request it stands for.
      // Nullable columns and an index only: older servers run on beside it.
      await db.schema.alterTable('app_repos').addColumn('host', 'text').execute();
      await db.schema.alterTable('app_repos').addColumn('host_repo_id', 'text').execute();
      await db.schema.alterTable('app_repos').addColumn('host_repo', 'text').execute();
      await db.schema
        .createIndex('app_repos_host_repo')
        .on('app_repos')
        .columns(['host', 'host_repo_id'])
        .execute();
      await db.schema.alterTable('change_requests').addColumn('host_number', 'integer').execute();
      await db.schema.alterTable('change_requests').addColumn('host_url', 'text').execute();
    },
  }),
};
